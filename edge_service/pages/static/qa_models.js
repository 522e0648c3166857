// Models on the service: upload a model file (the service checks it and reads its card), the versions with
// their cards, assign a version (threshold, shadow candidate) to a station with a reason, roll back in one
// action, the station's current and previous assignment, its changes, and the shadow comparison.
(() => {
  const { $, call, el, headers, showError, fmtTime } = window.qa;
  let me = null, models = [], stations = [], hasPrevious = false;
  const station = () => $("a-station").value;
  const scope = () => $("a-scope").value;  // "" = the station only, else a prefix: every station under it
  const under = (p) => stations.filter((s) => s === p || s.startsWith(p + "/"));

  // a prefix's stations may have earlier assignments even when this one has none: the service answers
  function rollbackState() { if (me.can_review) $("rollback").disabled = !hasPrevious && !scope(); }

  function fillScopes() {  // the station itself, then each prefix it lies under with how many stations that is
    const parts = station().split("/"), options = [new Option("this station only", "")];
    for (let n = parts.length - 1; n >= 1; n--) {
      const p = parts.slice(0, n).join("/");
      options.push(new Option("all " + under(p).length + " stations under " + p, p));
    }
    $("a-scope").replaceChildren(...options);
  }
  const num = (v, d) => (typeof v === "number" ? v.toFixed(d === undefined ? 4 : d) : "—");
  const pct = (v) => (typeof v === "number" ? (100 * v).toFixed(1) + " %" : "—");
  const label = (m) => (m ? m.name + " " + m.version : "—");

  function say(id, ok, text) { const m = $(id); m.className = ok ? "ok" : "error"; m.textContent = text; }

  function cardCells(c) {
    const h = c.head || {}, g = c.good_scores || {}, cal = c.calibration || {}, size = c.input_size || [];
    const calibration = "threshold " + num(c.threshold) + (cal.policy ? " · " + cal.policy : "") +
      (cal.target_frr !== undefined ? " target FRR " + pct(cal.target_frr) : "") +
      (cal.false_reject_rate !== undefined ? " · FRR " + pct(cal.false_reject_rate) : "") +
      (cal.escape_rate !== undefined ? " · escapes " + pct(cal.escape_rate) : "");
    const good = g.count ? g.count + " good: mean " + num(g.mean) + " ± " + num(g.std) + ", p99 " + num(g.p99) + ", max " + num(g.max) : "—";
    const evaluation = c.evaluation ? Object.entries(c.evaluation).filter(([, v]) => typeof v !== "object")
      .map(([k, v]) => k + " " + (typeof v === "number" ? num(v, 3) : v)).join(", ") : "—";
    return [h.preset || "—", h.backbone || "—", size.length ? size[0] + " × " + size[1] : "—", calibration, good,
      evaluation || "—", (c.training_set || {}).images !== undefined ? c.training_set.images + " images" : "—"];
  }

  function drawModels(assigned) {
    const heads = ["model", "version", "preset", "backbone", "input", "calibration", "good scores", "evaluation",
      "training", "uploaded", "SHA-256", "note"];
    $("models").replaceChildren(el("tr", {}, ...heads.map((x) => el("th", {}, x))), ...models.map((m) => {
      const inUse = assigned && assigned.model && assigned.model.sha256 === m.sha256 ? " (live here)" :
        assigned && assigned.shadow && assigned.shadow.sha256 === m.sha256 ? " (shadow here)" : "";
      return el("tr", { "data-model": m.name + "/" + m.version }, el("td", {}, m.name), el("td", {}, m.version + inUse),
        ...cardCells(m.card).map((x) => el("td", { class: "card-meta" }, x)),
        el("td", {}, m.uploaded_by + " · " + fmtTime(m.uploaded_at)), el("td", { title: m.sha256 }, m.sha256.slice(0, 12)),
        el("td", {}, m.note || ""));
    }));
    const options = () => models.map((m, i) => new Option(m.name + " " + m.version + " (threshold " + num(m.card.threshold) + ")", String(i)));
    const keep = [$("a-model").value, $("a-shadow").value];
    $("a-model").replaceChildren(...options());
    $("a-shadow").replaceChildren(new Option("none", ""), ...options());
    if (keep[0] && models[Number(keep[0])]) $("a-model").value = keep[0];
    $("a-shadow").value = keep[1] && models[Number(keep[1])] ? keep[1] : "";
  }

  function drawAssignment(a) {
    const threshold = a.threshold === null ? "the model's own" + (a.model ? " (" + num((models.find((m) => m.sha256 === a.model.sha256) || { card: {} }).card.threshold) + ")" : "") : num(a.threshold);
    $("current-model").textContent = a.model ? label(a.model) + " · " + a.model.sha256.slice(0, 12) : "none assigned" + (a.model_version ? " (results name version " + a.model_version + ")" : "");
    $("current-threshold").textContent = threshold;
    $("current-shadow").textContent = a.shadow ? label(a.shadow) : "none";
    $("current-by").textContent = a.updated_by ? a.updated_by + " · " + fmtTime(a.updated_at) : "—";
    const prev = a.previous[0];
    $("previous-model").textContent = prev ? (prev.model ? label(prev.model) : "no model") + " · threshold " +
      (prev.threshold === null ? "model's own" : num(prev.threshold)) + (prev.shadow ? " · shadow " + label(prev.shadow) : "") : "none (nothing to roll back to)";
    hasPrevious = Boolean(prev);
    rollbackState();
  }

  function summary(json) {  // an audit value (JSON of an assignment) in a few words
    if (!json) return "—";
    let v;
    try { v = JSON.parse(json); } catch (e) { return json; }
    const model = v.model_name ? v.model_name + " " + v.model_version : v.model_version ? "version " + v.model_version + " (no model assigned)" : "no model";
    return model + " · threshold " + (v.threshold === null || v.threshold === undefined ? "model's own" : num(v.threshold)) +
      (v.shadow_model_name ? " · shadow " + v.shadow_model_name + " " + v.shadow_model_version : "");
  }

  function drawHistory(entries) {
    $("history").replaceChildren(el("tr", {}, ...["when", "who", "what", "old", "new", "why"].map((h) => el("th", {}, h))),
      ...entries.map((x) => el("tr", {}, el("td", {}, fmtTime(x.at)), el("td", {}, x.actor), el("td", {}, x.action),
        el("td", { class: "card-meta", title: x.old_value || "" }, summary(x.old_value)),
        el("td", { class: "card-meta", title: x.new_value || "" }, summary(x.new_value)), el("td", {}, x.reason || ""))));
  }

  function drawShadow(cmp) {
    $("shadow-summary").textContent = cmp.pairs.length ? cmp.scanned + " results with a shadow verdict (newest)" :
      "no results with a shadow verdict at this station yet: assign a shadow candidate and let the line run";
    const rows = [el("tr", {}, ...["live", "candidate", "compared", "agree", "both PASS", "both FAIL", "only live FAIL", "only candidate FAIL"].map((h) => el("th", {}, h)))];
    for (const p of cmp.pairs) {
      rows.push(el("tr", { class: "pair" }, el("td", {}, p.live_model + " " + p.live_version), el("td", {}, p.shadow_model + " " + p.shadow_version),
        el("td", {}, p.compared), el("td", {}, pct(p.agreement)), el("td", {}, p.both_pass), el("td", {}, p.both_fail),
        el("td", {}, p.only_live_fail), el("td", {}, p.only_shadow_fail)));
      for (const d of p.disagreements) {
        const link = el("a", { href: "/qa/part#id=" + d.inspection_id }, d.part_id || d.inspection_id.slice(0, 8));
        rows.push(el("tr", { class: "disagreement card-meta" }, el("td", {}, link), el("td", {}, fmtTime(d.inspected_at)),
          el("td", { colSpan: 6 }, "live " + d.live_verdict + " " + num(d.live_score) + " · candidate " + d.shadow_verdict + " " + num(d.shadow_score))));
      }
    }
    $("shadow").replaceChildren(...rows);
  }

  async function loadStation() {
    if (!station()) return;
    const s = encodeURIComponent(station()).replaceAll("%2F", "/");
    const [a, audit, cmp] = await Promise.all([call("GET", "/api/v1/stations/" + s + "/assignment"),
      call("GET", "/api/v1/stations/" + s + "/assignment/audit"), call("GET", "/api/v1/qa/shadow?station=" + encodeURIComponent(station()))]);
    drawModels(a);
    drawAssignment(a);
    drawHistory(audit);
    drawShadow(cmp);
    document.body.dataset.loaded = station() + "|" + (a.updated_at || "") + "|" + models.length;
  }

  async function reload() {
    showError("");
    try {
      models = await call("GET", "/api/v1/models");
      await loadStation();
    } catch (e) { showError(e.message); }
  }

  async function upload(e) {
    e.preventDefault();
    const file = $("model-file").files[0];
    if (!file) { say("upload-message", false, "Not uploaded: choose an .onnx file first"); return; }
    if (file.size > window.QA.modelMaxBytes) {
      say("upload-message", false, "Not uploaded: " + file.name + " has " + file.size + " bytes; the service takes at most " + window.QA.modelMaxBytes);
      return;
    }
    const note = $("upload-note").value.trim();
    $("upload-message").className = ""; $("upload-message").textContent = "Uploading " + file.name + " …";
    try {
      const res = await fetch("/api/v1/models" + (note ? "?note=" + encodeURIComponent(note) : ""),
        { method: "POST", body: file, headers: headers({ "Content-Type": "application/octet-stream" }) });
      const data = await res.json().catch(() => null);
      if (!res.ok) throw new Error((data && data.message) || "HTTP " + res.status);
      say("upload-message", true, (res.status === 201 ? "Uploaded: " : "Already stored: ") + data.name + " version " + data.version + " (" + data.sha256.slice(0, 12) + ")");
      $("model-file").value = "";
      await reload();
    } catch (err) { say("upload-message", false, "Not uploaded: " + file.name + ": " + err.message); }
  }

  async function assign(e) {
    e.preventDefault();
    const m = models[Number($("a-model").value)], sh = $("a-shadow").value ? models[Number($("a-shadow").value)] : null;
    if (!m) { say("assign-message", false, "Not assigned: upload a model first"); return; }
    const t = $("a-threshold").value.trim();
    $("assign-message").textContent = ""; $("rollback-message").textContent = "";
    const body = { model_name: m.name, model_version: m.version, threshold: t === "" ? null : t, reason: $("a-reason").value.trim(),
      shadow: sh ? { model_name: sh.name, model_version: sh.version } : null };
    try {
      if (scope()) {
        const all = await call("PUT", "/api/v1/qa/assignments", Object.assign({ station_prefix: scope() }, body));
        say("assign-message", true, "Assigned: " + label(all[0].model) + " on " + all.length + " stations under " + scope() + " by " + all[0].updated_by);
      } else {
        const a = await call("PUT", "/api/v1/stations/" + station() + "/assignment", body);
        say("assign-message", true, "Assigned: " + label(a.model) + " on " + a.station + " by " + a.updated_by);
      }
      $("a-reason").value = "";
      await reload();
    } catch (err) { say("assign-message", false, "Not assigned: " + err.message); }
  }

  async function rollback(e) {
    e.preventDefault();
    $("rollback-message").textContent = ""; $("assign-message").textContent = "";
    const reason = $("rollback-reason").value.trim();
    try {
      if (scope()) {
        const all = await call("POST", "/api/v1/qa/assignments/rollback", { station_prefix: scope(), reason });
        say("rollback-message", true, "Rolled back: " + all.length + " stations under " + scope() + " by " + all[0].updated_by);
      } else {
        const a = await call("POST", "/api/v1/stations/" + station() + "/assignment/rollback", { reason });
        say("rollback-message", true, "Rolled back: " + (a.model ? label(a.model) : "no model") + " on " + a.station + " by " + a.updated_by);
      }
      $("rollback-reason").value = "";
      await reload();
    } catch (err) { say("rollback-message", false, "Not rolled back: " + err.message); }
  }

  async function start(who) {
    me = who;
    if (!me.can_review) {
      $("readonly").hidden = false;
      $("readonly").textContent = "Read only: your role (" + me.role + ") can see models and assignments but not upload, assign or roll back.";
      for (const id of ["upload", "assign", "rollback"]) $(id).disabled = true;
    }
    stations = await call("GET", "/api/v1/stations");
    $("a-station").replaceChildren(...stations.map((p) => new Option(p, p)));
    const wanted = new URLSearchParams(location.hash.slice(1)).get("station");
    if (wanted && stations.includes(wanted)) $("a-station").value = wanted;
    fillScopes();
    await reload();
  }

  $("upload-form").addEventListener("submit", upload);
  $("assign-form").addEventListener("submit", assign);
  $("rollback-form").addEventListener("submit", rollback);
  $("a-station").addEventListener("change", () => { fillScopes(); reload(); });
  $("a-scope").addEventListener("change", rollbackState);
  window.qa.boot(start);
})();
