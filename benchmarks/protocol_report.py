"""Markdown tables of the accuracy protocol's results (benchmarks/accuracy_protocol.py)."""

from __future__ import annotations

import numpy as np


def _f(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _training(r: dict) -> str:
    """The train-seconds and peak-RSS cells; a dash for a model an earlier run trained (--reuse-models)."""
    if "train_s" not in r:
        return "– (reused) | –"
    return f"{r['train_s']:.1f} | {r['peak_rss_mb']:.0f}"


def _category_table(results: dict) -> list[str]:
    lines = ["| preset | category | image AUROC | pixel AUROC | AUPRO | F1 | FRR at threshold | train s | "
             "peak RSS MB |", "|---|---|---|---|---|---|---|---|---|"]
    for preset, entry in results["presets"].items():
        rows = entry["real_surfaces"]
        for cat, r in rows.items():
            o = r["test"]["overall"]
            lines.append(f"| {preset} | {cat} | {_f(o['image_auroc'])} | {_f(o['pixel_auroc'])} | "
                         f"{_f(o['aupro'])} | {_f(o['f1'])} | {_f(r['test']['false_reject_rate'], 3)} | "
                         f"{_training(r)} |")
        means = {k: _mean([r["test"]["overall"][k] for r in rows.values()])
                 for k in ("image_auroc", "pixel_auroc", "aupro", "f1")}
        low = min(r["test"]["overall"]["image_auroc"] for r in rows.values())
        lines.append(f"| **{preset}** | **mean** (lowest image AUROC {low:.4f}) | **{_f(means['image_auroc'])}** | "
                     f"**{_f(means['pixel_auroc'])}** | {_f(means['aupro'])} | {_f(means['f1'])} | "
                     f"{_f(_mean([r['test']['false_reject_rate'] for r in rows.values()]), 3)} | | |")
    return lines


def _kind_table(results: dict) -> list[str]:
    """Per defect kind and subtlety, each figure the mean over the categories."""
    lines = ["| preset | defect kind | subtle | defects | SNR median | image AUROC | pixel AUROC | AUPRO |",
             "|---|---|---|---|---|---|---|---|"]
    for preset, entry in results["presets"].items():
        groups: dict[tuple[str, str], list[dict]] = {}
        for r in entry["real_surfaces"].values():
            for k in r["test"]["per_kind_subtlety"]:
                groups.setdefault((k["kind"], "subtle" if k["subtle"] else "clear"), []).append(k)
        for (kind, sub), ks in sorted(groups.items(), key=lambda g: (g[0][0] == "all", g[0])):
            lines.append(f"| {preset} | {kind} | {sub} | {sum(k['defect_images'] for k in ks)} | "
                         f"{_f(_mean([k['snr_median'] for k in ks]), 2)} | "
                         f"{_f(_mean([k['image_auroc'] for k in ks]))} | {_f(_mean([k['pixel_auroc'] for k in ks]))} | "
                         f"{_f(_mean([k['aupro'] for k in ks]))} |")
    return lines


def _synthetic_table(results: dict) -> list[str]:
    lines = ["| preset | part | image AUROC | pixel AUROC | AUPRO | F1 | FRR | train s (200 images) | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for preset, entry in results["presets"].items():
        for part, r in entry["synthetic"].items():
            o = r["test"]["overall"]
            lines.append(f"| {preset} | {part} | {_f(o['image_auroc'])} | {_f(o['pixel_auroc'])} | {_f(o['aupro'])} | "
                         f"{_f(o['f1'])} | {_f(r['test']['false_reject_rate'], 3)} | {_training(r)} |")
    return lines


def _latency_table(results: dict) -> list[str]:
    lines = ["| preset | input | threads | p50 ms | p90 ms | p99 ms | CPU-time p50 | CPU-time p90 | load average |",
             "|---|---|---|---|---|---|---|---|---|"]
    for preset, entry in results["presets"].items():
        for r in entry["latency"]:
            size = "×".join(str(x) for x in r.get("input_size", [256, 256]))
            lines.append(f"| {preset} | {size} | {r['threads']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                         f"{r['p99_ms']:.2f} | {r['cpu_p50_ms']:.2f} | {r['cpu_p90_ms']:.2f} | "
                         f"{r.get('load_average', '–')} |")
    return lines


def _floor_text(results: dict) -> str:
    floor = results.get("visibility_floor")
    if not floor:
        return "no visibility floor (defects as first drawn, some of them invisible)"
    return (f"visibility floor: defects redrawn until their ring SNR reaches {floor['clear']} (clear) or "
            f"{floor['subtle']} (subtle), see `datasets/README.md`")


def markdown(results: dict) -> str:
    m = results["machine"]
    head = [f"## Accuracy protocol: the real-surfaces set and the synthetic line, per preset ({results['date']})", "",
            f"Machine: {m['cpu']}, {m['cores']} cores, ISA flags {', '.join(m['isa'])}; onnxruntime "
            f"{m['onnxruntime']}, Python {m['python']}. `benchmarks/accuracy_protocol.py`: the real-surfaces set "
            "(`datasets/real_surfaces.py`, seed 12; 160 train/good per category, test split 40 good + 10 per "
            f"defect kind, a quarter subtle; {_floor_text(results)}) and the synthetic line (seed 7, "
            "200 train/good); every preset trained per category with `inspection train --preset` (15 % of the "
            "good images held out for the threshold, "
            "target FRR 1 %), evaluated on the test split (choices were made on the validation split only). "
            "F1 and FRR are at the model's own threshold. Latency: `session.run` on one image at the model's "
            "input size, median over repeats of each repeat's percentile; the 1-minute load average when it "
            "was measured is beside it (other jobs share the 2 cores: wall times then exceed CPU times).", ""]
    return "\n".join([*head, "### Per category (test split)", "", *_category_table(results), "",
                      "### Per defect kind and subtlety (mean over the categories)", "", *_kind_table(results), "",
                      "### The synthetic line", "", *_synthetic_table(results), "",
                      "### Latency per preset", "", *_latency_table(results)])
