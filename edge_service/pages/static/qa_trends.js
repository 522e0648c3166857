// Trends dashboard: one /api/v1/qa/trends call drawn as SVG charts and tables; CSV of each table.
(() => {
  const { $, call, el, query, showError } = window.qa;
  const charts = window.qaCharts;

  function params() {
    const days = { "24h": 1, "7d": 7, "30d": 30 }[$("f-period").value];
    const until = new Date(Date.now() + 60e3);
    return { station: $("f-station").value.trim(), since: new Date(until - days * 86400e3).toISOString(),
      until: until.toISOString(), bucket: days === 1 ? "hour" : "day" };
  }

  function table(id, head, rows) {
    $(id).replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))), ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c)))));
  }

  const pct = (v) => (v === null ? "—" : (100 * v).toFixed(1) + " %");

  function label(iso, bucket) {
    const d = new Date(iso);
    return bucket === "hour" ? String(d.getHours()).padStart(2, "0") + ":00" : (d.getMonth() + 1) + "/" + d.getDate();
  }

  function render(t) {
    const total = t.series.reduce((a, p) => a + p.total, 0), fail = t.series.reduce((a, p) => a + p.fail, 0);
    $("summary").textContent = total + " parts, " + fail + " FAIL, yield " + pct(total ? (total - fail) / total : null);
    charts.lines($("c-series"), t.series.map((p) => label(p.start, t.bucket)), [
      { name: "yield", colour: "#2e7d32", values: t.series.map((p) => p.yield_rate) },
      { name: "defect rate", colour: "#c62828", values: t.series.map((p) => p.defect_rate) }]);
    table("t-series", ["start", "parts", "FAIL", "yield", "defect rate"],
      t.series.map((p) => [new Date(p.start).toLocaleString(), p.total, p.fail, pct(p.yield_rate), pct(p.defect_rate)]));
    charts.pareto($("c-pareto"), t.pareto);
    table("t-pareto", ["defect class", "count", "cumulative"], t.pareto.map((r) => [r.defect_class, r.count, pct(r.cumulative_share)]));
    charts.histogram($("c-scores"), t.scores.map((b) => ({ low: b.low, high: b.high, a: b.passed, b: b.failed })),
      ["PASS", "FAIL"], ["#2e7d32", "#c62828"], t.thresholds.map((v) => ({ value: v, label: "threshold " + v.toFixed(3) })));
    charts.heatGrid($("c-regions"), t.region_grid_size, t.region_grid);
    table("t-models", ["model version", "parts", "FAIL", "reviewed", "confirmed defects", "false alarms", "escapes"],
      t.models.map((m) => [m.model_version, m.total, m.fail, m.reviewed, m.confirmed_defects, m.false_alarms, m.escapes]));
    document.body.dataset.loaded = String(total);
  }

  async function load() {
    showError("");
    try { render(await call("GET", "/api/v1/qa/trends?" + query(params()))); } catch (e) { showError(e.message); }
  }

  async function exportCsv(tableName) {
    const res = await fetch("/api/v1/qa/trends.csv?" + query(Object.assign(params(), { table: tableName })),
      { headers: window.qa.headers() });
    if (!res.ok) { showError("CSV export: HTTP " + res.status); return; }
    const a = el("a", { href: URL.createObjectURL(await res.blob()), download: "trends-" + tableName + ".csv" });
    document.body.append(a); a.click(); a.remove();
  }

  async function start() {
    const stations = await call("GET", "/api/v1/stations");
    $("stations").replaceChildren(...stations.map((p) => new Option(p, p)));
    await load();
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  document.querySelectorAll("button.csv").forEach((b) => b.addEventListener("click", () => exportCsv(b.dataset.table)));
  window.qa.boot(start);
})();
