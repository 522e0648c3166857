"""Multi-scale scoring of the normalised patch map (issue 12: large soft stains), on the VALIDATION split.

For each preset's head, fitted with the training code (:func:`inspection.model.training.fit_head`) on the
bank images of each real-surfaces category (the 160 train/good images split into bank and held-out exactly
as ``inspection train`` does, 15 % held out), the per-position normalised z-maps (before any blur and border)
of the held-out good images and of the validation split are computed once with the numpy reference and
cached under ``benchmarks/.data/scale_cache``. Scoring variants are then applied offline: Gaussian or box
smoothing at several scales, each branch standardised by statistics of the held-out good images only, image
score = max over branches of each branch's maximum; pixel AUROC on the maps upsampled to 256 px.

    python benchmarks/scale_study.py [--presets balanced,fast] [--categories a,b] [--variants a;b]
        [--split test] [--check] [--table]

``--check`` prints the matched-filter check (how much smoothing lowers the good maps' noise against how much
it lowers each defect kind's peak); ``--table`` the recorded lines as Markdown. Results: the subsection
"Multi-scale scoring for large soft defects" of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import head_study  # noqa: E402
from benchmarks.accuracy_protocol import DATA  # noqa: E402
from datasets.real_surfaces import load_manifest  # noqa: E402
from inspection.evaluation.metrics import auroc  # noqa: E402
from inspection.model.anomaly_head import (  # noqa: E402
    HeadParams,
    blur,
    gaussian_kernel,
    nearest_distances,
    patch_features,
)
from inspection.model.presets import preset_settings  # noqa: E402
from inspection.model.training import TrainConfig, fit_head  # noqa: E402

CACHE = DATA / "scale_cache"
EVAL = head_study.EVAL_SIZE
KINDS = ("stain", "ds_stain", "pit", "ds_pit", "scratch", "ds_scratch", "ds_crack")


@dataclass
class Maps:
    hold: np.ndarray  # (24, h, w) z-maps of held-out good images
    val: np.ndarray  # (N, h, w)
    labels: np.ndarray
    masks: np.ndarray  # (N, 256, 256) bool
    kinds: np.ndarray
    subtle: np.ndarray
    border: int


def zmaps(p8: np.ndarray, p16: np.ndarray, head: HeadParams) -> np.ndarray:
    """(N, h, w) per-position normalised patch distances (steps 1-6 of the head), in float64."""
    out = []
    for i in range(0, len(p8), 8):
        a, b = p8[i:i + 8].astype(np.float64), p16[i:i + 8].astype(np.float64)
        x = head.transform(patch_features(a, b, head.layer_scales))
        d = nearest_distances(x, head).reshape(len(a), *head.patch_shape)
        assert head.position_mean is not None and head.position_std is not None
        out.append((d - head.position_mean) / head.position_std)
    return np.concatenate(out).astype(np.float32)


def load_maps(preset: str, cat: str) -> Maps:
    CACHE.mkdir(parents=True, exist_ok=True)
    split = head_study.SPLIT
    file = CACHE / (f"{preset}_{cat}.npz" if split == "validation" else f"{preset}_{cat}_{split}.npz")
    settings = preset_settings(preset)
    size = settings.get("input_size", (256, 256))[0]
    train, val = head_study.load_category(cat, size)
    if not file.exists():
        config = TrainConfig(name="study", progress=False, **settings)
        order = np.random.default_rng(config.seed).permutation(len(train.p8))  # as training._split_good
        n_hold = round(len(train.p8) * config.holdout_fraction)
        hold, bank = np.sort(order[:n_hold]), np.sort(order[n_hold:])
        t = time.perf_counter()
        head = fit_head(train.p8[bank], train.p16[bank], config)
        print(f"  fitted {preset} {cat} in {time.perf_counter() - t:.1f} s", flush=True)
        np.savez(file, hold=zmaps(train.p8[hold], train.p16[hold], head), val=zmaps(val.p8, val.p16, head))
    z = np.load(file)
    return Maps(z["hold"], z["val"], val.labels, val.masks, val.kinds, val.subtle, settings["border"])


# ---- scoring variants: (maps, hold maps, keep) -> (image score (N,), patch map (N, h, w))

def keep_mask(shape: tuple[int, int], border: int) -> np.ndarray:
    keep = np.zeros(shape, np.float64)
    keep[border:shape[0] - border, border:shape[1] - border] = 1
    return keep


def gauss(z: np.ndarray, sigma: float) -> np.ndarray:
    return blur(z[:, None].astype(np.float64), gaussian_kernel(sigma).astype(np.float64))[:, 0]


def box(z: np.ndarray, k: int) -> np.ndarray:
    return blur(z[:, None].astype(np.float64), np.full((k, k), 1.0 / (k * k)))[:, 0]


def masked(smooth: Callable[[np.ndarray], np.ndarray], z: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Normalised convolution: the smoothing of the map inside the border only, divided by that of the mask."""
    return smooth(z * keep) / np.maximum(smooth(keep[None]), 1e-6)


def upsampled_peak(m: np.ndarray) -> np.ndarray:
    return np.array([cv2.resize(x.astype(np.float32), (EVAL, EVAL), interpolation=cv2.INTER_LINEAR).max()
                     for x in m])


def branch_stats(bh: np.ndarray, keep: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of a branch on the held-out good maps: of its values inside the border (``pix``), of its
    image maxima (``peak``) or per position (``pos``)."""
    inside = keep > 0
    if how == "pix":
        return np.asarray(bh[:, inside].mean()), np.asarray(bh[:, inside].std())
    if how == "peak":
        peaks = (bh * keep).reshape(len(bh), -1).max(axis=1)
        return np.asarray(peaks.mean()), np.asarray(peaks.std())
    if how == "pos":
        sd = bh.std(axis=0)
        return bh.mean(axis=0), np.maximum(sd, 0.5 * np.median(sd))
    raise ValueError(how)


def aligned(b: np.ndarray, bh: np.ndarray, fine_hold: np.ndarray, keep: np.ndarray, how: str) -> np.ndarray:
    """A branch standardised by its held-out statistics, then put in the finest branch's units (that one is
    left as it is), so the border's 0 means the same in every branch and the maximum over branches compares
    standardised values."""
    mu, sd = branch_stats(bh, keep, how)
    mu0, sd0 = branch_stats(fine_hold, keep, how)
    return (b - mu) / sd * sd0 + mu0


@dataclass(frozen=True)
class Scoring:
    name: str
    smooth: tuple[tuple[str, float], ...] = (("g", 0),)  # branches: ("g", sigma) Gaussian / ("b", k) box
    how: str = "pix"
    masked: bool = False  # smooth inside the border only
    fine_map: bool = False  # the map is the finest branch only (else the max over branches)
    top_k: int = 1
    relu: bool = False  # smooth only the positive part of the map (good-looking patches count as 0)

    def branch(self, z: np.ndarray, kind: str, s: float, keep: np.ndarray) -> np.ndarray:
        if self.relu:
            z = np.maximum(z, 0)
        if kind == "g" and s == 0:
            return z.astype(np.float64)
        f: Callable[[np.ndarray], np.ndarray] = (lambda a: gauss(a, s)) if kind == "g" else (lambda a: box(a, int(s)))
        return masked(f, z, keep) if self.masked else f(z)

    def __call__(self, m: Maps) -> tuple[np.ndarray, np.ndarray]:
        keep = keep_mask(m.val.shape[1:], m.border)
        if len(self.smooth) == 1 and self.smooth[0] == ("g", 0) and self.top_k == 1:  # the product's scoring
            mp = m.val * keep
            return upsampled_peak(mp), mp
        branches = []
        fine_hold = self.branch(m.hold, *self.smooth[0], keep)
        for kind, s in self.smooth:
            b, bh = self.branch(m.val, kind, s, keep), self.branch(m.hold, kind, s, keep)
            if len(self.smooth) > 1:
                b = aligned(b, bh, fine_hold, keep, self.how)
            branches.append(b * keep)
        mp = np.max(branches, axis=0)
        score = upsampled_peak(mp)
        if self.top_k > 1:
            top = -np.sort(-mp.reshape(len(mp), -1), axis=1)[:, :self.top_k]
            score = np.minimum(top.mean(axis=1), score)
        return score, branches[0] if self.fine_map else mp


def _g(*sigmas: float) -> tuple[tuple[str, float], ...]:
    return tuple(("g", s) for s in sigmas)


SCORINGS = [
    Scoring("current (max of the normalised map)"),
    Scoring("single blur g1", _g(1)),
    Scoring("single blur g2", _g(2)),
    Scoring("single blur g1 masked", _g(1), masked=True),
    Scoring("single blur g2 masked", _g(2), masked=True),
    Scoring("multi g0,1,2 pix", _g(0, 1, 2)),
    Scoring("multi g0,2,4 pix", _g(0, 2, 4)),
    Scoring("multi g0,1 pix", _g(0, 1)),
    Scoring("multi g0,2 pix", _g(0, 2)),
    Scoring("multi g0,1,2 peak", _g(0, 1, 2), how="peak"),
    Scoring("multi g0,2,4 peak", _g(0, 2, 4), how="peak"),
    Scoring("multi g0,1 peak", _g(0, 1), how="peak"),
    Scoring("multi g0,2 peak", _g(0, 2), how="peak"),
    Scoring("multi g0,1,2 pos", _g(0, 1, 2), how="pos"),
    Scoring("multi g0,1,2 pix masked", _g(0, 1, 2), masked=True),
    Scoring("multi g0,1,2 peak masked", _g(0, 1, 2), how="peak", masked=True),
    Scoring("multi g0,2,4 peak masked", _g(0, 2, 4), how="peak", masked=True),
    Scoring("multi g0,1,2 peak, fine map", _g(0, 1, 2), how="peak", fine_map=True),
    Scoring("multi g0,1,2 pix, fine map", _g(0, 1, 2), fine_map=True),
    Scoring("multi box 1,3,5 pix", (("g", 0), ("b", 3), ("b", 5))),
    Scoring("multi box 1,3,5 peak", (("g", 0), ("b", 3), ("b", 5)), how="peak"),
    Scoring("multi box 1,3 peak", (("g", 0), ("b", 3)), how="peak"),
    Scoring("multi g0,1 pix masked", _g(0, 1), masked=True),
    Scoring("multi g0,1 peak masked", _g(0, 1), how="peak", masked=True),
    Scoring("multi g0,0.5,1 pix masked", _g(0, 0.5, 1), masked=True),
    Scoring("relu multi g0,1,2 pix masked", _g(0, 1, 2), masked=True, relu=True),
    Scoring("relu multi g0,1,2 peak masked", _g(0, 1, 2), how="peak", masked=True, relu=True),
    Scoring("multi box 1,5,9 peak masked", (("g", 0), ("b", 5), ("b", 9)), how="peak", masked=True),
    Scoring("top-4 mean", top_k=4),
    Scoring("top-9 mean", top_k=9),
    Scoring("multi g0,1,2 peak, top-4", _g(0, 1, 2), how="peak", top_k=4),
]


def evaluate(m: Maps, sc: Scoring) -> dict:
    score, patch = sc(m)
    maps = np.stack([cv2.resize(x.astype(np.float32), (EVAL, EVAL), interpolation=cv2.INTER_LINEAR)
                     for x in patch])
    out: dict = {"image": auroc(m.labels, score), "pixel": auroc(m.masks.ravel(), maps.ravel()), "kinds": {}}
    for kind in sorted(set(m.kinds) - {"good"}):
        take = (m.kinds == "good") | (m.kinds == kind)
        out["kinds"][kind] = {"image": auroc(m.labels[take], score[take]),
                              "pixel": auroc(m.masks[take].ravel(), maps[take].ravel())}
    return out


def matched_filter_check(maps: dict[str, Maps], sigmas: tuple[float, ...] = (1, 2, 4)) -> dict:
    """Does smoothing raise a defect's peak more than the good images' noise? Per sigma (masked Gaussian):
    the held-out good maps' std inside the border relative to the unsmoothed map's, and per kind the median
    over defects of (peak inside the defect's mask of the smoothed map / its std) over (the same unsmoothed):
    > 1 means the smoothed branch sees that defect better relative to its own noise."""
    out: dict = {}
    for s in sigmas:
        sc = Scoring("", _g(0, s), masked=True)
        noise, gains = [], {}
        for m in maps.values():
            keep = keep_mask(m.val.shape[1:], m.border)
            inside = keep > 0
            b0h, bsh = sc.branch(m.hold, "g", 0, keep), sc.branch(m.hold, "g", s, keep)
            sd0, sds = b0h[:, inside].std(), bsh[:, inside].std()
            noise.append(sds / sd0)
            b0, bs = sc.branch(m.val, "g", 0, keep), sc.branch(m.val, "g", s, keep)
            h, w = m.val.shape[1:]
            for i in np.flatnonzero(m.labels == 1):
                small = cv2.resize(m.masks[i].astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0
                small &= inside
                if small.any():
                    gains.setdefault(str(m.kinds[i]), []).append((bs[i][small].max() / sds)
                                                                 / (b0[i][small].max() / sd0))
        out[f"sigma {s}"] = {"noise_std_ratio": float(np.mean(noise)),
                             "peak_snr_gain_median": {k: float(np.median(v)) for k, v in sorted(gains.items())}}
    return out


def summarise(preset: str, sc: Scoring, per_cat: dict[str, dict]) -> dict:
    row = {"preset": preset, "scoring": sc.name, "split": head_study.SPLIT, "categories": per_cat}
    for key in ("image", "pixel"):
        row[key] = float(np.mean([c[key] for c in per_cat.values()]))
    kinds = sorted({k for c in per_cat.values() for k in c["kinds"]})
    row["kinds"] = {k: {q: float(np.mean([c["kinds"][k][q] for c in per_cat.values() if k in c["kinds"]]))
                        for q in ("image", "pixel")} for k in kinds}
    return row


def line(row: dict) -> str:
    cats = " ".join(f"{c[:4]} {v['image']:.3f}" for c, v in row["categories"].items())
    kinds = " ".join(f"{k} {row['kinds'][k]['image']:.3f}/{row['kinds'][k]['pixel']:.3f}"
                     for k in ("stain", "ds_stain", "pit") if k in row["kinds"])
    return f"{row['preset']:9s} {row['scoring']:38s} img {row['image']:.4f} pix {row['pixel']:.4f} {cats} | {kinds}"


def table(path: Path, names: list[str]) -> str:
    """The recorded lines (the last per preset, split and scoring; only ``names`` if given) as Markdown."""
    rows = {(r["preset"], r.get("split", "validation"), r["scoring"]): r
            for r in map(json.loads, path.read_text().splitlines())}
    cats = list(next(iter(rows.values()))["categories"])
    kinds = ("stain", "ds_stain", "pit")
    out = ["| preset | scoring | mean image AUROC | mean pixel AUROC | " + " | ".join(cats) + " (image) | "
           + " | ".join(f"{k} image / pixel" for k in kinds) + " |", "|---|---|---|---|" + "---|" * (len(cats) + 3)]
    for (preset, split, name), r in rows.items():
        if names and not any(n == name for n in names):
            continue
        label = preset if split == "validation" else f"{preset} ({split})"
        out.append(f"| {label} | {name} | {r['image']:.4f} | {r['pixel']:.4f} | "
                   + " | ".join(f"{r['categories'][c]['image']:.3f}" for c in cats) + " | "
                   + " | ".join(f"{r['kinds'][k]['image']:.3f} / {r['kinds'][k]['pixel']:.3f}" for k in kinds) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="balanced,fast")
    parser.add_argument("--categories", default=",".join(load_manifest()["categories"]))
    parser.add_argument("--variants", default="", help="substrings of scoring names, separated by ;")
    parser.add_argument("--out", type=Path, default=DATA / "scale_study.jsonl")
    parser.add_argument("--check", action="store_true", help="only the matched-filter check per preset")
    parser.add_argument("--split", choices=["validation", "test"], default="validation",
                        help="score on the test split (only to confirm what validation showed)")
    parser.add_argument("--table", action="store_true", help="print the recorded lines as a Markdown table")
    args = parser.parse_args()
    if args.table:
        print(table(args.out, [w for w in args.variants.split(";") if w]))
        return
    head_study.SPLIT = args.split
    wanted = [w for w in args.variants.split(";") if w]
    chosen = [s for s in SCORINGS if not wanted or any(w in s.name for w in wanted)]
    for preset in args.presets.split(","):
        maps = {cat: load_maps(preset, cat) for cat in args.categories.split(",")}
        if args.check:
            print(preset, json.dumps(matched_filter_check(maps), indent=1), flush=True)
            continue
        for sc in chosen:
            row = summarise(preset, sc, {cat: evaluate(m, sc) for cat, m in maps.items()})
            print(line(row), flush=True)
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
