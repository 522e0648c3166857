"""Benchmark reports: a terminal table, JSON, a self-contained HTML page (inline SVG, no internet) and a
side-by-side comparison of runs from different boxes."""

from __future__ import annotations

import html
import json
from pathlib import Path


def _f(v, digits=2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def table(report: dict) -> str:
    head = ("run", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "frames/s", "CPU %", "RSS MB", "valid", "budget")
    rows = [head]
    for r in report["runs"]:
        s = r["stats"]
        b = r.get("budget")
        rows.append((r["label"], str(s["count"]), _f(s.get("p50_ms")), _f(s.get("p90_ms")), _f(s.get("p99_ms")),
                     _f(s.get("p99_9_ms")), _f(s.get("frames_per_s"), 1), _f(r["cpu_percent"], 0),
                     _f(r["peak_rss_mb"], 0), "yes" if r["valid"] else "NO",
                     "" if b is None else ("PASS" if b["pass"] else "FAIL")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    m = report["machine"]
    isa = ", ".join(k for k, v in (m.get("isa") or {}).items() if v) or "none of the listed"
    lines.append(f"\nmachine: {m['cpu_model']}, {m['logical_cores']} cores, ISA {isa}; onnxruntime {m['onnxruntime']}")
    if "int8_agreement" in report:
        a = report["int8_agreement"]
        lines.append(f"int8 vs fp32 on {a['samples']} samples: rank correlation {a['rank_correlation']:.4f}, "
                     f"verdict agreement {a['verdict_agreement']:.1%}")
    for sp in report.get("int8_speed", []):
        lines.append(f"int8 vs fp32, {sp['run']}: p50 {sp['int8_p50_ms']:.2f} vs {sp['fp32_p50_ms']:.2f} ms "
                     f"(x{sp['p50_ratio']:.2f}), p90 x{sp['p90_ratio']:.2f}")
    if "int8_accuracy" in report:
        c = report["int8_accuracy"]
        lines.append(f"image AUROC on {c['good']} held-out good + {c['defects']} defect images: fp32 "
                     f"{c['fp32_image_auroc']:.4f}, int8 {c['int8_image_auroc']:.4f} ({c['change']:+.4f})")
    if report["verdict"]:
        lines.append(f"budget {report['budget']}: {report['verdict']}"
                     + (f" (met by: {'; '.join(report['meeting_budget'])})" if report["meeting_budget"] else ""))
    return "\n".join(lines)


def _bars_svg(items: list[tuple[str, float]], unit: str, width: int = 640) -> str:
    if not items:
        return ""
    top = max(v for _, v in items) or 1.0
    h = 22 * len(items) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" role="img">']
    for i, (label, v) in enumerate(items):
        w = (width - 330) * v / top
        y = 5 + 22 * i
        out.append(f'<text x="0" y="{y + 14}" font-size="11">{html.escape(label[:48])}</text>'
                   f'<rect x="300" y="{y}" width="{w:.1f}" height="16" fill="#3b7dd8"/>'
                   f'<text x="{305 + w:.1f}" y="{y + 13}" font-size="11">{v:.2f} {unit}</text>')
    out.append("</svg>")
    return "".join(out)


def _histogram_svg(hist: dict, width: int = 640, height: int = 140) -> str:
    counts, edges = hist["counts"], hist["edges_ms"]
    if not counts or max(counts) == 0:
        return ""
    top, n = max(counts), len(counts)
    bw = (width - 40) / n
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}" role="img">']
    for i, c in enumerate(counts):
        bh = (height - 10) * c / top
        out.append(f'<rect x="{30 + i * bw:.1f}" y="{height - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" '
                   'fill="#5a9e4b"/>')
    out.append(f'<text x="30" y="{height + 15}" font-size="11">{edges[0]:.2f} ms</text>'
               f'<text x="{width - 80}" y="{height + 15}" font-size="11">{edges[-1]:.2f} ms</text></svg>')
    return "".join(out)


def to_html(report: dict) -> str:
    esc = html.escape
    runs = report["runs"]
    parts = [f"<h1>Edge inspection benchmark: {esc(report['model_name'])}</h1>",
             f"<p>{esc(report['date'])}. Budget: {esc(report['budget'] or 'none')}"
             + (f" &mdash; <b class='{report['verdict'].lower()}'>{report['verdict']}</b>" if report["verdict"] else "")
             + "</p>", "<h2>Runs</h2>", f"<pre>{esc(table(report))}</pre>",
             "<h2>Sweep: p90 latency</h2>",
             _bars_svg([(r["label"], r["stats"].get("p90_ms", 0)) for r in runs if r["spec"]["scenario"] != "offline"],
                       "ms"),
             "<h2>Sweep: throughput</h2>",
             _bars_svg([(r["label"], r["stats"].get("frames_per_s", 0)) for r in runs], "frames/s")]
    for r in runs:
        parts.append(f"<h3>{esc(r['label'])}</h3><p>session creation {r['session_create_ms']:.1f} ms, first "
                     f"inference {r['first_inference_ms']:.1f} ms, errors {r['errors']}, "
                     f"{'valid' if r['valid'] else 'NOT valid (too short)'}</p>")
        parts.append(_histogram_svg(r["histogram"]))
        if r["stages"]:
            parts.append("<p>Per stage (mean):</p>" + _bars_svg(
                [(s, v["mean_ms"]) for s, v in r["stages"].items()], "ms"))
    prov = runs[0]["provenance"] if runs else {}
    parts.append("<h2>Provenance</h2><table>" + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in prov.items()) + "</table>")
    if "int8_agreement" in report:
        int8 = {k: report[k] for k in ("int8_agreement", "int8_speed", "int8_accuracy") if k in report}
        parts.append(f"<h2>INT8 against fp32</h2><pre>{esc(json.dumps(int8, indent=2))}</pre>")
    style = ("body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}pre{background:#f4f4f4;"
             "padding:1em;overflow-x:auto;font-size:12px}th{text-align:left;padding-right:1em}"
             ".pass{color:#0a8a2a}.fail{color:#c8161d}")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Benchmark "
            f"{esc(report['model_name'])}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>")


def write(report: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    js, page = out / "bench.json", out / "bench.html"
    js.write_text(json.dumps(report, indent=2, default=str) + "\n")
    page.write_text(to_html(report))
    return js, page


def compare(reports: list[tuple[str, dict]]) -> str:
    """Runs of the same configuration side by side, one column group per report (box)."""
    keys = []
    for _, rep in reports:
        for r in rep["runs"]:
            if r["label"] not in keys:
                keys.append(r["label"])
    names = [n for n, _ in reports]
    head = ["run"] + [f"{n} p90" for n in names] + [f"{n} fps" for n in names]
    rows = [head]
    for k in keys:
        row = [k]
        found = [next((r for r in rep["runs"] if r["label"] == k), None) for _, rep in reports]
        row += [_f(r["stats"].get("p90_ms")) if r else "–" for r in found]
        row += [_f(r["stats"].get("frames_per_s"), 1) if r else "–" for r in found]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    for n, rep in reports:
        m = rep["machine"]
        lines.append(f"{n}: {m['cpu_model']}, {m['logical_cores']} cores, onnxruntime {m['onnxruntime']}, "
                     f"{rep['date']}, verdict {rep.get('verdict') or '–'}")
    return "\n".join(lines)
