// Small hand-written SVG charts for the QA pages (no library, nothing from outside): lines over time,
// bars with a cumulative line, and histograms with vertical markers (thresholds).
window.qaCharts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 640, H = 220, L = 44, R = 12, T = 12, B = 30;

  function node(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function frame(svg, yMax, yFmt) {
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.replaceChildren();
    for (let k = 0; k <= 4; k++) {
      const y = T + (H - T - B) * (1 - k / 4);
      svg.append(node("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#e3e6ea" }),
        node("text", { x: L - 4, y: y + 4, "font-size": 10, "text-anchor": "end" }, yFmt(yMax * k / 4)));
    }
  }

  const sx = (i, n) => L + (W - L - R) * (n <= 1 ? 0.5 : i / (n - 1));
  const sy = (v, max) => T + (H - T - B) * (1 - v / (max || 1));
  const pct = (v) => Math.round(v * 100) + "%";
  const count = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

  function lines(svg, labels, series) {  // series: [{name, colour, values in 0..1}]
    frame(svg, 1, pct);
    const n = labels.length;
    for (const s of series) {
      const pts = s.values.map((v, i) => (v === null ? null : sx(i, n) + "," + sy(v, 1))).filter(Boolean);
      svg.append(node("polyline", { points: pts.join(" "), fill: "none", stroke: s.colour, "stroke-width": 2, "data-series": s.name }));
      s.values.forEach((v, i) => { if (v !== null) svg.append(node("circle", { cx: sx(i, n), cy: sy(v, 1), r: 2.5, fill: s.colour })); });
    }
    const step = Math.max(1, Math.ceil(n / 8));
    labels.forEach((t, i) => { if (i % step === 0) svg.append(node("text", { x: sx(i, n), y: H - 10, "font-size": 10, "text-anchor": "middle" }, t)); });
    series.forEach((s, k) => svg.append(node("text", { x: L + 8 + k * 110, y: T + 10, "font-size": 11, fill: s.colour }, s.name)));
  }

  function pareto(svg, rows) {
    const max = Math.max(1, ...rows.map((r) => r.count));
    frame(svg, max, count);
    const n = rows.length, bw = (W - L - R) / Math.max(n, 1);
    rows.forEach((r, i) => {
      const x = L + i * bw + bw * 0.15;
      svg.append(node("rect", { x, y: sy(r.count, max), width: bw * 0.7, height: H - B - sy(r.count, max), fill: "#c62828", class: "bar" }),
        node("text", { x: x + bw * 0.35, y: H - 10, "font-size": 10, "text-anchor": "middle" }, r.defect_class));
    });
    const pts = rows.map((r, i) => (L + i * bw + bw / 2) + "," + sy(r.cumulative_share, 1));
    svg.append(node("polyline", { points: pts.join(" "), fill: "none", stroke: "#1b1f24", "stroke-width": 1.5 }),
      node("text", { x: W - R - 4, y: T + 10, "font-size": 10, "text-anchor": "end" }, "line: cumulative share (top = 100%)"));
  }

  // bins: [{low, high, a, b}] stacked a (bottom) and b; markers: [{value, label}] drawn as vertical lines
  function histogram(svg, bins, names, colours, markers) {
    const max = Math.max(1, ...bins.map((b) => b.a + b.b));
    frame(svg, max, count);
    if (!bins.length) return;
    const lo = bins[0].low, hi = Math.max(bins[bins.length - 1].high, ...markers.map((m) => m.value));
    const x = (v) => L + (W - L - R) * ((v - lo) / ((hi - lo) || 1));
    for (const b of bins) {
      const w = Math.max(1, x(b.high) - x(b.low) - 1);
      svg.append(node("rect", { x: x(b.low), y: sy(b.a, max), width: w, height: H - B - sy(b.a, max), fill: colours[0] }),
        node("rect", { x: x(b.low), y: sy(b.a + b.b, max), width: w, height: sy(b.a, max) - sy(b.a + b.b, max), fill: colours[1] }));
    }
    markers.forEach((m, k) => {
      svg.append(node("line", { x1: x(m.value), x2: x(m.value), y1: T, y2: H - B, stroke: "#000", "stroke-dasharray": "4 3", class: "marker" }),
        node("text", { x: x(m.value) + 3, y: T + 22 + 12 * k, "font-size": 10 }, m.label));
    });
    for (let k = 0; k <= 4; k++) {
      const v = lo + (hi - lo) * k / 4;
      svg.append(node("text", { x: x(v), y: H - 10, "font-size": 10, "text-anchor": "middle" }, v.toFixed(2)));
    }
    names.forEach((nm, k) => svg.append(node("text", { x: W - R - 150 + k * 75, y: T + 10, "font-size": 11, fill: colours[k] }, nm)));
  }

  // cells: [{row, column, regions}] on a size x size grid; darker red = more regions
  function heatGrid(svg, size, cells) {
    const px = 240 / size, max = Math.max(1, ...cells.map((c) => c.regions));
    svg.setAttribute("viewBox", "0 0 240 240");
    svg.replaceChildren(node("rect", { x: 0, y: 0, width: 240, height: 240, fill: "#f4f5f7", stroke: "#ccc" }));
    for (const c of cells) {
      const cell = node("rect", { x: c.column * px, y: c.row * px, width: px, height: px, fill: "#c62828",
        "fill-opacity": (0.15 + 0.85 * c.regions / max).toFixed(2), class: "cell" });
      cell.append(node("title", {}, c.regions + " regions"));
      svg.append(cell, node("text", { x: c.column * px + px / 2, y: c.row * px + px / 2 + 4, "font-size": 11, "text-anchor": "middle" }, c.regions));
    }
  }

  return { lines, pareto, histogram, heatGrid };
})();
