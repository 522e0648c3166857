// Thresholds with evidence: histogram of reviewed scores, rate curve, proposal for a target false-reject
// rate, applying a threshold (audited; the service validates it and answers what was wrong), audit log.
(() => {
  const { $, call, el, query, showError, fmtTime } = window.qa;
  const charts = window.qaCharts;
  let me = null, evidence = null;
  const pct = (v) => (v === null || v === undefined ? "—" : (100 * v).toFixed(1) + " %");
  const station = () => $("f-station").value;

  function draw(ev) {
    $("counts").textContent = ev.confirmed_defects + " confirmed defects, " + ev.false_alarms + " false alarms" + (ev.note ? " · " + ev.note : "");
    const markers = [];
    if (ev.current_threshold !== null) markers.push({ value: ev.current_threshold, label: "current " + ev.current_threshold.toFixed(3) });
    if (ev.proposed_threshold !== null) markers.push({ value: ev.proposed_threshold, label: "proposed " + ev.proposed_threshold.toFixed(3) });
    charts.histogram($("c-hist"), ev.histogram.map((b) => ({ low: b.low, high: b.high, a: b.false_alarms, b: b.confirmed_defects })),
      ["false alarm", "defect"], ["#e6a100", "#c62828"], markers);
    charts.lines($("c-curve"), ev.curve.map((p) => p.threshold.toFixed(2)), [
      { name: "false-reject rate", colour: "#e6a100", values: ev.curve.map((p) => p.false_reject_rate) },
      { name: "escape rate", colour: "#c62828", values: ev.curve.map((p) => p.escape_rate) }]);
    $("current").textContent = ev.current_threshold === null ? "—" : ev.current_threshold.toFixed(4);
    $("proposed").textContent = ev.proposed_threshold === null ? "none" : ev.proposed_threshold.toFixed(4);
    $("proposed-rates").textContent = ev.proposed ? "(false rejects " + pct(ev.proposed.false_reject_rate) + ", escapes " + pct(ev.proposed.escape_rate) + ")" : "";
    if (ev.proposed_threshold !== null && !$("new-threshold").value) $("new-threshold").value = ev.proposed_threshold.toFixed(4);
  }

  function evidenceQuery(extra) {
    const target = Number($("f-target").value) / 100;
    return query(Object.assign({ station: station(), model_version: $("f-model").value.trim(), target_frr: target }, extra || {}));
  }

  async function load() {
    showError("");
    try {
      evidence = await call("GET", "/api/v1/qa/thresholds/evidence?" + evidenceQuery());
      draw(evidence);
      const a = await call("GET", "/api/v1/stations/" + station() + "/assignment");
      $("assigned-by").textContent = a.updated_by ? "applied by " + a.updated_by + " · " + fmtTime(a.updated_at) : "the model's own (none applied)";
      if (me.can_audit) await loadAudit();
      document.body.dataset.loaded = station();
    } catch (e) { showError(e.message); }
  }

  async function whatIf() {
    try {
      const ev = await call("GET", "/api/v1/qa/thresholds/evidence?" + evidenceQuery({ at: $("what-if").value.trim() }));
      $("what-if-out").textContent = "false rejects " + pct(ev.what_if.false_reject_rate) + ", escapes " + pct(ev.what_if.escape_rate);
    } catch (e) { $("what-if-out").textContent = e.message; }
  }

  async function applyThreshold(e) {
    e.preventDefault();
    const msg = $("apply-message");
    msg.className = "";
    try {
      const before = $("current").textContent;
      const body = { threshold: $("new-threshold").value.trim(), reason: $("reason").value.trim(), model_version: $("f-model").value.trim() || null };
      const a = await call("POST", "/api/v1/stations/" + station() + "/threshold", body);
      msg.className = "ok"; msg.textContent = "Applied: " + before + " → " + a.threshold + " on " + a.station + " by " + a.updated_by;
      $("reason").value = "";
      await load();
    } catch (err) { msg.className = "error"; msg.textContent = "Not applied: " + err.message; }
  }

  async function loadAudit() {
    const entries = await call("GET", "/api/v1/audit?limit=50");
    $("audit-card").hidden = false;
    $("audit").replaceChildren(el("tr", {}, ...["when", "who", "what", "target", "old", "new", "why"].map((h) => el("th", {}, h))),
      ...entries.map((x) => el("tr", {}, el("td", {}, fmtTime(x.at)), el("td", {}, x.actor), el("td", {}, x.action), el("td", {}, x.target),
        el("td", {}, x.old_value || "—"), el("td", {}, x.new_value || "—"), el("td", {}, x.reason || ""))));
  }

  async function start(who) {
    me = who;
    if (!me.can_review) {
      $("readonly").hidden = false;
      $("readonly").textContent = "Read only: your role (" + me.role + ") can see the evidence but not change a threshold.";
      $("apply").disabled = true;
    }
    const stations = await call("GET", "/api/v1/stations");
    $("f-station").replaceChildren(...stations.map((p) => new Option(p, p)));
    const wanted = new URLSearchParams(location.hash.slice(1)).get("station");
    if (wanted && stations.includes(wanted)) $("f-station").value = wanted;
    await load();
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); $("new-threshold").value = ""; load(); });
  $("f-station").addEventListener("change", () => { $("new-threshold").value = ""; load(); });
  $("what-if-go").addEventListener("click", whatIf);
  $("apply-form").addEventListener("submit", applyThreshold);
  window.qa.boot(start);
})();
