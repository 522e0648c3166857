"""The real-surfaces evaluation set: part-like crops of real photographs shipped inside installed packages,
with nuisance variation and defects with pixel masks, written in MVTec AD layout. Deterministic: the same
manifest and seed give the same pixels. Nothing is downloaded; no image is committed.

    python datasets/real_surfaces.py --out data/real_surfaces [--small]

The manifest (``real_surfaces.json`` beside this file) names each category's source photograph (package,
file, SHA-256), the region crops are taken from, the crop side, the counts and the nuisance ranges.
scikit-image's ``brick``, ``gravel`` and ``grass`` are reserved for an independent check and refused here.

Per category ``<out>/<category>/``: ``train/good``; ``test/{good,<kind>}`` with ``ground_truth/<kind>``
(the split the reported figures come from); ``validation/`` with the same layout (the split choices are
made on); ``defects.json`` in each split root gives every defect image's kind, subtlety, mask area and
visibility SNR. Each image is made in this order: a rotated, scaled crop of the photograph (the surface),
the defect drawn on the surface, then the camera: gain, offset, an illumination gradient, slight blur,
sensor noise. Masks come from the defect drawing, so they match the defect exactly.
A defect below the manifest's visibility floor (ring SNR, per subtlety) is drawn again, so that a "clear"
defect can be seen (see datasets/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets.surface_defects import DEFECT_KINDS, RENDERERS, visibility_snr

MANIFEST = Path(__file__).with_name("real_surfaces.json")
RESERVED = ("brick", "gravel", "grass")
SPLITS = ("train", "validation", "test")
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]
REDRAWS = 24  # at most this many more draws of a defect below the visibility floor


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # uint8 RGB
    mask: np.ndarray  # uint8 0/255
    kind: str
    subtle: bool
    snr: float
    redraws: int = 0  # how many times the defect was drawn again to reach the visibility floor


def load_manifest(path: Path = MANIFEST) -> dict:
    return json.loads(Path(path).read_text())


def source_path(entry: dict) -> Path:
    """The photograph's file inside its installed package; refuses the reserved photographs."""
    if any(r in Path(entry["file"]).stem for r in RESERVED):
        raise ValueError(f"{entry['file']}: reserved for the independent check; never used here")
    spec = importlib.util.find_spec(entry["package"])
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"package {entry['package']!r} is not installed (pip install '.[dev]')")
    path = Path(next(iter(spec.submodule_search_locations))) / entry["file"]
    if not path.is_file():
        raise ValueError(f"{path}: source photograph missing from the installed {entry['package']}")
    return path


def load_source(entry: dict) -> np.ndarray:
    """The source photograph as float32 RGB, checked against the manifest's SHA-256 when one is given."""
    path = source_path(entry)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if entry.get("sha256") and entry["sha256"] != digest:
        raise ValueError(f"{path}: SHA-256 {digest} differs from the manifest's {entry['sha256']}; "
                         "another package version ships another photograph")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32)


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """A generator that depends only on the seed and the image's identity (category, split, kind, index)."""
    words = [int.from_bytes(hashlib.sha256(str(k).encode()).digest()[:4], "little") for k in keys]
    return np.random.default_rng([seed, *words])


def crop(source: np.ndarray, entry: dict, nuisance: dict, size: int, rng: np.random.Generator) -> np.ndarray:
    """A size x size crop of the region, rotated and scaled a little, at a random place (float32 RGB)."""
    x0, y0, x1, y1 = entry["region"]
    angle = rng.uniform(-nuisance["rotation_deg"], nuisance["rotation_deg"])
    side = entry["crop"] * (1 + rng.uniform(-nuisance["scale"], nuisance["scale"]))
    reach = side / 2 * (abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle))))
    cx = rng.uniform(x0 + reach, max(x0 + reach, x1 - reach))
    cy = rng.uniform(y0 + reach, max(y0 + reach, y1 - reach))
    m = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    m[:, 2] += size / 2 - np.array([cx, cy])
    return cv2.warpAffine(source, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def camera(surface: np.ndarray, nuisance: dict, rng: np.random.Generator) -> np.ndarray:
    """Gain, offset, an illumination gradient, slight blur and sensor noise; uint8 RGB out."""
    h, w = surface.shape[:2]
    gain = 1 + rng.uniform(-nuisance["gain"], nuisance["gain"])
    a = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xx - w / 2) * np.cos(a) + (yy - h / 2) * np.sin(a)) / (w / 2)
    light = 1 + rng.uniform(0, nuisance["gradient"]) * ramp
    out = surface * (gain * light)[..., None] + rng.uniform(-nuisance["offset"], nuisance["offset"])
    sigma = rng.uniform(0, nuisance["blur_sigma_max"])
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    lo, hi = nuisance["noise_sigma"]
    out = out + rng.normal(0, rng.uniform(lo, hi), out.shape).astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def visibility_floor(manifest: dict, subtle: bool) -> float:
    """The least ring SNR a defect of this subtlety must reach (0 = no floor): the manifest's
    ``visibility_floor`` {"clear": ..., "subtle": ...}."""
    return float(manifest.get("visibility_floor", {}).get("subtle" if subtle else "clear", 0.0))


def _drawn_defect(surface: np.ndarray, kind: str, subtle: bool, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    for _ in range(8):  # a third-party defect may fall outside the image; draw again
        drawn = RENDERERS[kind](surface, rng, subtle)
        if drawn.mask.sum() >= 4:
            break
    return drawn.image, drawn.mask


def make_sample(source: np.ndarray, entry: dict, manifest: dict, rng: np.random.Generator,
                kind: str | None = None, subtle: bool = False,
                redraw: Callable[[int], np.random.Generator] | None = None) -> Sample:
    """One image of a category: good when ``kind`` is None, else with one defect of that kind.

    With ``redraw`` (attempt number -> a generator of its own) and a visibility floor in the manifest, a
    defect whose ring SNR after the camera is below the floor is drawn again on the same surface (another
    place, size and strength, another camera draw) up to ``REDRAWS`` times; the most visible draw is kept.
    The first draw uses ``rng`` exactly as without a floor, so good images and defects that were visible
    already are the same pixels with or without it."""
    size, nuisance = manifest["size"], manifest["nuisance"]
    surface = crop(source, entry, nuisance, size, rng)
    if kind is None:
        return Sample(camera(surface, nuisance, rng), np.zeros((size, size), np.uint8), "good", False, 0.0)
    if kind not in RENDERERS:
        raise ValueError(f"unknown defect kind {kind!r}; choose from {', '.join(DEFECT_KINDS)}")
    floor = visibility_floor(manifest, subtle)
    best: Sample | None = None
    for attempt in range(1 + (REDRAWS if floor > 0 and redraw is not None else 0)):
        r = rng if attempt == 0 or redraw is None else redraw(attempt)
        drawn, mask = _drawn_defect(surface, kind, subtle, r)
        image = camera(drawn, nuisance, r)
        snr = visibility_snr(image, mask)
        if best is None or snr > best.snr:
            best = Sample(image, mask.astype(np.uint8) * 255, kind, subtle, snr, attempt)
        if snr >= floor:
            break
    assert best is not None
    return best


def _jobs(counts: dict, split: str) -> list[tuple[str, int]]:
    if split == "train":
        return [("good", counts["train_good"])]
    return [("good", counts[f"{split}_good"]), *[(k, counts[f"{split}_per_kind"]) for k in DEFECT_KINDS]]


def write_category(out: Path, category: str, manifest: dict) -> Path:
    """Write one category's three splits under ``out/category``; returns that folder."""
    entry = manifest["categories"][category]
    source = load_source(entry)
    base = Path(out) / category
    share = manifest["subtle_share"]
    for split in SPLITS:
        root = base / "validation" if split == "validation" else base
        folder = "train" if split == "train" else "test"
        records: dict[str, dict] = {}
        for kind, count in _jobs(manifest["counts"], split):
            (root / folder / kind).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                subtle = kind != "good" and (i + 1) * share % 1 < share  # exactly the share, spread evenly
                keys = (manifest["seed"], category, split, kind, i)
                s = make_sample(source, entry, manifest, rng_for(*keys), None if kind == "good" else kind, subtle,
                                redraw=lambda attempt, keys=keys: rng_for(*keys, "visibility", attempt))
                name = f"{folder}/{kind}/{i:03d}.png"
                cv2.imwrite(str(root / name), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR), _PNG)
                if kind != "good":
                    (root / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(root / "ground_truth" / kind / f"{i:03d}_mask.png"), s.mask, _PNG)
                    records[name] = {"kind": kind, "subtle": s.subtle, "snr": round(s.snr, 4),
                                     "area": int((s.mask > 0).sum()), "redraws": s.redraws,
                                     "below_floor": s.snr < visibility_floor(manifest, s.subtle)}
        if records:
            (root / "defects.json").write_text(json.dumps(records, indent=1) + "\n")
    return base


def small_manifest(manifest: dict, train_good: int = 12, good: int = 4, per_kind: int = 2) -> dict:
    """The same set with fewer images (for tests): the images it has are identical to the full set's."""
    small = json.loads(json.dumps(manifest))
    small["counts"] = {"train_good": train_good, "validation_good": good, "validation_per_kind": per_kind,
                       "test_good": good, "test_per_kind": per_kind}
    return small


def write_all(out: Path, manifest: dict, categories: list[str] | None = None) -> list[Path]:
    return [write_category(out, c, manifest) for c in categories or list(manifest["categories"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--category", action="append", help="only these categories (repeatable)")
    parser.add_argument("--small", action="store_true", help="a small version (for a quick look)")
    args = parser.parse_args()
    manifest = load_manifest()
    for folder in write_all(args.out, small_manifest(manifest) if args.small else manifest, args.category):
        print("wrote", folder)


if __name__ == "__main__":
    main()
