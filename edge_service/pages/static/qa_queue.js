// Review queue: filters, newest first, cursor-paged, thumbnails; keyboard-first review and bulk actions.
(() => {
  const { $, call, el, fmtTime, query, imageUrl, showError } = window.qa;
  let me = null, items = [], current = -1, cursor = null;
  const selected = new Set();
  const classesByStation = {};

  function startOf(preset) {
    const now = new Date();
    if (preset === "today") return new Date(now.getFullYear(), now.getMonth(), now.getDate());
    if (preset === "shift") {
      const hours = window.qa.cfg.shiftStartHours.slice().sort((a, b) => a - b);
      const past = hours.filter((h) => h <= now.getHours());
      const start = new Date(now.getFullYear(), now.getMonth(), now.getDate(), past.length ? past[past.length - 1] : hours[hours.length - 1]);
      if (!past.length) start.setDate(start.getDate() - 1);
      return start;
    }
    return null;
  }

  function filters() {
    const preset = $("f-time").value;
    let since = startOf(preset), until = null;
    if (preset === "custom") {
      since = $("f-since").value ? new Date($("f-since").value) : null;
      until = $("f-until").value ? new Date($("f-until").value) : null;
    }
    return {
      station: $("f-station").value.trim(), verdict: $("f-verdict").value, review_state: $("f-review").value,
      since: since ? since.toISOString() : "", until: until ? until.toISOString() : "",
      min_score: $("f-min").value, max_score: $("f-max").value, model_version: $("f-model").value.trim(),
      part_id: $("f-part").value.trim(), defect_class: $("f-class").value.trim(),
    };
  }

  function row(r, i) {
    const thumb = el("img", { class: "thumb", alt: "" });
    const kind = r.images.includes("overlay") ? "overlay" : (r.images.includes("original") ? "original" : null);
    if (kind) imageUrl(r.inspection_id, kind).then((u) => { if (u) thumb.src = u; });
    const box = el("input", { type: "checkbox", checked: selected.has(r.inspection_id), tabIndex: -1 });
    box.addEventListener("change", () => toggle(r.inspection_id, box.checked));
    const tr = el("tr", { class: r.verdict === "FAIL" ? "fail" : "pass", "data-id": r.inspection_id },
      el("td", {}, box), el("td", {}, thumb), el("td", {}, fmtTime(r.inspected_at)),
      el("td", { class: "station" }, r.station ? [r.station.site, r.station.area, r.station.line, r.station.cell, r.station.station].join("/") : ""),
      el("td", {}, r.part_id || ""), el("td", { class: "verdict" }, r.verdict),
      el("td", {}, r.score.toFixed(3) + " / " + r.threshold.toFixed(3)), el("td", {}, r.model.version),
      el("td", { class: "state" }, r.review_state.replace("_", " ")), el("td", { class: "cls" }, r.defect_class || ""));
    tr.addEventListener("click", () => focusRow(i));
    tr.addEventListener("dblclick", () => openPart());
    return tr;
  }

  function render() {
    $("queue").tBodies[0].replaceChildren(...items.map(row));
    $("empty").hidden = items.length > 0;
    $("more").hidden = !cursor;
    $("selected-count").textContent = selected.size + " selected";
    if (current >= 0) markCurrent();
  }

  async function load(append) {
    showError("");
    try {
      const params = Object.assign(filters(), { limit: 50, cursor: append ? cursor : "" });
      const page = await call("GET", "/api/v1/qa/queue?" + query(params));
      items = append ? items.concat(page.items) : page.items;
      cursor = page.next_cursor;
      if (!append) { selected.clear(); current = items.length ? 0 : -1; }
      render();
      if (!append && current >= 0) focusRow(0);
      if (!items.length) clearPanel();
    } catch (e) { showError(e.message); }
  }

  function stationOf(r) { return [r.station.site, r.station.area, r.station.line, r.station.cell, r.station.station].join("/"); }

  function markCurrent() {
    [...$("queue").tBodies[0].rows].forEach((tr, i) => tr.classList.toggle("current", i === current));
  }

  function clearPanel() { $("panel-title").textContent = "—"; $("history").replaceChildren(); $("panel-image").hidden = true; }

  async function focusRow(i) {
    if (i < 0 || i >= items.length) return;
    current = i; markCurrent();
    const r = items[i];
    const tr = $("queue").tBodies[0].rows[i];
    if (tr && tr.scrollIntoView) tr.scrollIntoView({ block: "nearest" });
    $("panel-title").textContent = (r.part_id || r.inspection_id.slice(0, 8)) + " · " + r.verdict + " " + r.score.toFixed(3);
    $("panel-open").href = "/qa/part#id=" + r.inspection_id;
    const kind = r.images.includes("overlay") ? "overlay" : (r.images.includes("original") ? "original" : null);
    $("panel-image").hidden = !kind;
    if (kind) imageUrl(r.inspection_id, kind).then((u) => { if (u && items[current] === r) $("panel-image").src = u; });
    delete $("panel").dataset.ready;
    await loadClasses(stationOf(r));
    if (items[current] !== r) return;
    $("class").value = r.defect_class || "";
    await loadHistory(r.inspection_id);
    if (items[current] === r) $("panel").dataset.ready = r.inspection_id;  // classes and history shown
  }

  async function loadClasses(station) {
    if (!(station in classesByStation)) {
      classesByStation[station] = (await call("GET", "/api/v1/qa/defect-classes?" + query({ station }))).names;
    }
    const names = classesByStation[station];
    if ($("class").dataset.station === station) return;  // keep the reviewer's pick
    $("class").dataset.station = station;
    $("class").replaceChildren(new Option("— none —", ""), ...names.map((n, k) => new Option((k < 9 ? (k + 1) + " · " : "") + n, n)));
  }

  async function loadHistory(id) {
    const h = await call("GET", "/api/v1/qa/results/" + id + "/history");
    if (items[current] && items[current].inspection_id !== id) return;
    $("history").replaceChildren(...h.reviews.slice().reverse().map((v) => el("li", {},
      el("b", {}, v.decision.replace("_", " ")), v.defect_class ? " · " + v.defect_class : "",
      " · by " + v.reviewer + " · " + fmtTime(v.created_at), v.comment ? el("div", { class: "comment" }, v.comment) : "")));
    if (!h.reviews.length) $("history").replaceChildren(el("li", { class: "none" }, "not reviewed yet"));
  }

  function toggle(id, on) {
    if (on) selected.add(id); else selected.delete(id);
    $("selected-count").textContent = selected.size + " selected";
  }

  async function decide(decision, bulk) {
    if (!me) return;
    if (!me.can_review) { showError("your role (" + me.role + ") may not review: ask for a qa token"); return; }
    const ids = bulk ? [...selected] : (current >= 0 ? [items[current].inspection_id] : []);
    if (!ids.length) { showError(bulk ? "select results first (space)" : "no result to review"); return; }
    try {
      const body = { inspection_ids: ids, decision, defect_class: $("class").value || null, comment: $("comment").value.trim() || null };
      await call("POST", "/api/v1/qa/reviews", body);
      for (const r of items) if (ids.includes(r.inspection_id)) { r.review_state = decision; r.defect_class = body.defect_class; }
      $("comment").value = ""; showError("");
      if (bulk) selected.clear();
      const at = current;
      render();
      await focusRow(!bulk && at + 1 < items.length ? at + 1 : at);
      if (!bulk && at + 1 >= items.length) await loadHistory(items[at].inspection_id);
    } catch (e) { showError(e.message); }
  }

  async function saveClasses(e) {
    e.preventDefault();
    const prefix = $("classes-prefix").value.trim();
    const names = $("classes-names").value.split(",").map((n) => n.trim()).filter(Boolean);
    try {
      await call("PUT", "/api/v1/qa/defect-classes", { station_prefix: prefix, names });
      for (const k of Object.keys(classesByStation)) delete classesByStation[k];
      delete $("class").dataset.station;
      $("classes-message").className = "ok"; $("classes-message").textContent = "Saved " + names.length + " classes for " + prefix;
      if (current >= 0) await focusRow(current);
    } catch (err) { $("classes-message").className = "error"; $("classes-message").textContent = "Not saved: " + err.message; }
  }

  function openPart() { if (current >= 0) location.href = "/qa/part#id=" + items[current].inspection_id; }

  function onKey(e) {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (typing) { if (e.key === "Escape") document.activeElement.blur(); return; }
    const keys = {
      ArrowDown: () => focusRow(current + 1), ArrowUp: () => focusRow(current - 1), j: () => focusRow(current + 1),
      k: () => focusRow(current - 1), d: () => decide("confirmed_defect", false), f: () => decide("false_alarm", false),
      u: () => decide("unsure", false), c: () => $("comment").focus(), Enter: openPart,
      " ": () => { if (current >= 0) { const id = items[current].inspection_id; toggle(id, !selected.has(id)); render(); } },
    };
    if (/^[1-9]$/.test(e.key)) {
      const opt = $("class").options[Number(e.key)];
      if (opt) $("class").value = opt.value;
      e.preventDefault(); return;
    }
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  }

  async function start(who) {
    me = who;
    if (!me.can_review) {
      $("readonly").hidden = false;
      $("readonly").textContent = "Read only: your role (" + me.role + ") can see results but not review them.";
      for (const id of ["do-defect", "do-false", "do-unsure", "bulk-defect", "bulk-false", "bulk-unsure", "classes-save"]) $(id).disabled = true;
    }
  }

  async function prefetch() {  // the first page and the station list, while who-am-I is asked
    const stations = call("GET", "/api/v1/stations").then((list) => {
      $("stations").replaceChildren(...list.map((p) => new Option(p, p)));
    });
    await Promise.all([load(false), stations.catch((e) => showError(e.message))]);
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  $("f-time").addEventListener("change", () => document.body.classList.toggle("show-custom", $("f-time").value === "custom"));
  $("more").addEventListener("click", () => load(true));
  $("classes-form").addEventListener("submit", saveClasses);
  $("do-defect").addEventListener("click", () => decide("confirmed_defect", false));
  $("do-false").addEventListener("click", () => decide("false_alarm", false));
  $("do-unsure").addEventListener("click", () => decide("unsure", false));
  $("bulk-defect").addEventListener("click", () => decide("confirmed_defect", true));
  $("bulk-false").addEventListener("click", () => decide("false_alarm", true));
  $("bulk-unsure").addEventListener("click", () => decide("unsure", true));
  document.addEventListener("keydown", onKey);
  window.qa.boot(start, prefetch);
})();
