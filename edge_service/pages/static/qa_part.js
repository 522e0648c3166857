// Part viewer: the original at full resolution with zoom and pan; toggles for the heatmap image, the
// regions with their peak scores and the threshold; the result's metadata and review history.
(() => {
  const { $, call, el, fmtTime, imageUrl, showError } = window.qa;
  const view = { scale: 1, x: 0, y: 0 };
  let result = null, me = null;

  function apply() {
    $("stage").style.transform = "translate(" + view.x + "px," + view.y + "px) scale(" + view.scale + ")";
    $("zoom").textContent = Math.round(view.scale * 100) + " %";
    $("stage").dataset.scale = view.scale.toFixed(3);
  }

  function zoomAt(factor, cx, cy) {
    const s = Math.min(16, Math.max(0.05, view.scale * factor));
    view.x = cx - (cx - view.x) * (s / view.scale); view.y = cy - (cy - view.y) * (s / view.scale);
    view.scale = s; apply();
  }

  function fit() {
    if (!result) return;
    const box = $("viewer").getBoundingClientRect();
    view.scale = Math.min(box.width / result.image_width, box.height / result.image_height);
    view.x = (box.width - result.image_width * view.scale) / 2; view.y = (box.height - result.image_height * view.scale) / 2;
    apply();
  }

  function stationPath(r) { return r.station ? [r.station.site, r.station.area, r.station.line, r.station.cell, r.station.station].join("/") : "—"; }

  function drawRegions(r) {
    const svg = $("regions");
    svg.setAttribute("width", r.image_width); svg.setAttribute("height", r.image_height);
    svg.setAttribute("viewBox", "0 0 " + r.image_width + " " + r.image_height);
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren(...r.regions.flatMap((g) => {
      const rect = document.createElementNS(ns, "rect");
      Object.entries({ x: g.x, y: g.y, width: g.width, height: g.height, fill: "none", stroke: "#fff", "stroke-width": 1.5 })
        .forEach(([k, v]) => rect.setAttribute(k, v));
      const text = document.createElementNS(ns, "text");
      Object.entries({ x: g.x + 2, y: Math.max(10, g.y - 3), fill: "#fff", "font-size": 11 }).forEach(([k, v]) => text.setAttribute(k, v));
      text.textContent = g.peak_score.toFixed(3);
      return [rect, text];
    }));
    $("region-list").replaceChildren(...r.regions.map((g) => el("li", {}, "peak " + g.peak_score.toFixed(3) + " at (" + g.x + ", " + g.y + ") " + g.width + "×" + g.height + " px, " + g.area_px + " px²")));
    if (!r.regions.length) $("region-list").replaceChildren(el("li", { class: "none" }, "no regions above the threshold"));
  }

  function drawScorebar(r) {
    const svg = $("scorebar"), ns = "http://www.w3.org/2000/svg", w = 560, top = Math.max(r.score, r.threshold) * 1.25 || 1;
    const x = (v) => 20 + (v / top) * w;
    const parts = [["rect", { x: 20, y: 18, width: w, height: 10, fill: "#dde" }],
      ["rect", { x: 20, y: 18, width: x(r.score) - 20, height: 10, fill: r.verdict === "FAIL" ? "#c62828" : "#2e7d32" }],
      ["text", { x: 20, y: 12, "font-size": 12 }, "score " + r.score.toFixed(3)],
      ["line", { id: "threshold-line", x1: x(r.threshold), x2: x(r.threshold), y1: 12, y2: 34, stroke: "#000", "stroke-width": 2 }],
      ["text", { id: "threshold-label", x: x(r.threshold) + 4, y: 44, "font-size": 12 }, "threshold " + r.threshold.toFixed(3)]];
    svg.replaceChildren(...parts.map(([tag, attrs, text]) => {
      const n = document.createElementNS(ns, tag);
      Object.entries(attrs).forEach(([k, v]) => n.setAttribute(k, v));
      if (text) n.textContent = text;
      return n;
    }));
    toggleThreshold();
  }

  function toggleThreshold() {
    const on = $("t-threshold").checked;
    for (const id of ["threshold-line", "threshold-label"]) { const n = document.getElementById(id); if (n) n.style.display = on ? "" : "none"; }
  }

  function metadata(r) {
    const t = r.timings, ms = (v) => (v == null ? "—" : v.toFixed(1) + " ms");
    const rows = [["Station", stationPath(r)], ["Part", r.part_id || "—"], ["Verdict", r.verdict], ["Score", r.score.toFixed(4)],
      ["Judged with threshold", r.threshold.toFixed(4)], ["Model", r.model.name], ["Model version", r.model.version],
      ["Model SHA-256", r.model.sha256], ["Inspected", fmtTime(r.inspected_at)], ["Image", r.image_width + " × " + r.image_height + " px"],
      ["Preprocess", ms(t.preprocess_ms)], ["Inference", ms(t.inference_ms)], ["Postprocess", ms(t.postprocess_ms)],
      ["Capture wait", ms(t.capture_wait_ms)], ["Publish", ms(t.publish_ms)], ["Review", r.review_state.replace("_", " ") + (r.defect_class ? " · " + r.defect_class : "")]];
    $("meta").replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { "data-field": k }, v))));
    $("history").replaceChildren(...r.reviews.slice().reverse().map((v) => el("li", {}, el("b", {}, v.decision.replace("_", " ")),
      (v.defect_class ? " · " + v.defect_class : "") + " · by " + v.reviewer + " · " + fmtTime(v.created_at), v.comment ? el("div", { class: "comment" }, v.comment) : "")));
  }

  async function decide(decision) {
    if (!me || !me.can_review) { showError("your role may not review: ask for a qa token"); return; }
    try {
      await call("POST", "/api/v1/qa/reviews", { inspection_ids: [result.inspection_id], decision,
        defect_class: $("class").value || null, comment: $("comment").value.trim() || null });
      result = await call("GET", "/api/v1/results/" + result.inspection_id);
      $("comment").value = ""; showError(""); metadata(result);
    } catch (e) { showError(e.message); }
  }

  async function start(who) {
    me = who;
    if (!me.can_review) {
      $("readonly").hidden = false;
      $("readonly").textContent = "Read only: your role (" + me.role + ") can see this part but not review it.";
      for (const b of ["do-defect", "do-false", "do-unsure"]) $(b).disabled = true;
    }
    const id = new URLSearchParams(location.hash.slice(1)).get("id");
    if (!id) { showError("no result given: open a part from the review queue"); return; }
    result = await call("GET", "/api/v1/results/" + encodeURIComponent(id));
    const classes = await call("GET", "/api/v1/qa/defect-classes?" + window.qa.query({ station: stationPath(result) }));
    $("class").replaceChildren(new Option("— none —", ""), ...classes.names.map((n) => new Option(n, n)));
    $("class").value = result.defect_class || "";
    $("title").textContent = (result.part_id || result.inspection_id.slice(0, 8)) + " · " + result.verdict;
    metadata(result); drawRegions(result); drawScorebar(result);
    const kinds = result.images;
    if (kinds.includes("original")) $("original").src = await imageUrl(result.inspection_id, "original");
    else showError("no original image is kept for this result (PASS images are sampled; retention may have removed it)");
    if (kinds.includes("heatmap")) {
      $("heatmap").src = await imageUrl(result.inspection_id, "heatmap");
      $("heatmap").width = result.image_width; $("heatmap").height = result.image_height;
    } else { $("t-heatmap").disabled = true; $("heatmap-note").textContent = "no heatmap stored for this result"; }
    fit();
    document.body.dataset.loaded = result.inspection_id;
  }

  $("t-heatmap").addEventListener("change", () => { $("heatmap").hidden = !$("t-heatmap").checked; });
  $("t-regions").addEventListener("change", () => { $("regions").style.display = $("t-regions").checked ? "" : "none"; });
  $("t-threshold").addEventListener("change", toggleThreshold);
  const center = () => { const b = $("viewer").getBoundingClientRect(); return [b.width / 2, b.height / 2]; };
  $("z-in").addEventListener("click", () => zoomAt(1.25, ...center()));
  $("z-out").addEventListener("click", () => zoomAt(0.8, ...center()));
  $("z-fit").addEventListener("click", fit);
  $("z-one").addEventListener("click", () => { const [cx, cy] = center(); zoomAt(1 / view.scale, cx, cy); });
  $("viewer").addEventListener("wheel", (e) => {
    e.preventDefault(); const b = $("viewer").getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - b.left, e.clientY - b.top);
  }, { passive: false });
  let drag = null;
  $("viewer").addEventListener("pointerdown", (e) => { drag = [e.clientX - view.x, e.clientY - view.y]; $("viewer").setPointerCapture(e.pointerId); });
  $("viewer").addEventListener("pointermove", (e) => { if (drag) { view.x = e.clientX - drag[0]; view.y = e.clientY - drag[1]; apply(); } });
  $("viewer").addEventListener("pointerup", () => { drag = null; });
  document.addEventListener("keydown", (e) => {
    const tag = document.activeElement.tagName;
    if ((tag === "INPUT" && document.activeElement.type !== "checkbox") || tag === "SELECT") {
      if (e.key === "Escape") document.activeElement.blur();
      return;
    }
    const keys = { d: () => decide("confirmed_defect"), f: () => decide("false_alarm"), u: () => decide("unsure"),
      h: () => $("t-heatmap").click(), r: () => $("t-regions").click(), t: () => $("t-threshold").click(),
      "+": () => $("z-in").click(), "-": () => $("z-out").click(), 0: fit, 1: () => $("z-one").click() };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  $("do-defect").addEventListener("click", () => decide("confirmed_defect"));
  $("do-false").addEventListener("click", () => decide("false_alarm"));
  $("do-unsure").addEventListener("click", () => decide("unsure"));
  window.qa.boot((who) => start(who).catch((e) => showError(e.message)));
})();
