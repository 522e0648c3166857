"""The real-surfaces evaluation set: deterministic, masks that match the defects, reserved photographs
refused, the visibility figure right, and the MVTec layout `inspection eval` reads."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from datasets.real_surfaces import (
    crop,
    load_manifest,
    load_source,
    make_sample,
    rng_for,
    small_manifest,
    source_path,
    write_category,
)
from datasets.surface_defects import DEFECT_KINDS, RENDERERS, visibility_snr

MANIFEST = load_manifest()
CATEGORIES = list(MANIFEST["categories"])


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_pixels(tmp_path):
    small = small_manifest(MANIFEST, train_good=3, good=2, per_kind=1)
    a = _files(write_category(tmp_path / "a", "tissue", small))
    b = _files(write_category(tmp_path / "b", "tissue", small))
    assert a == b
    assert len([n for n in a if n.startswith("test/")]) == 2 + len(DEFECT_KINDS)
    other = dict(small, seed=small["seed"] + 1)
    c = _files(write_category(tmp_path / "c", "tissue", other))
    assert a["train/good/000.png"] != c["train/good/000.png"]


def test_small_set_is_a_prefix_of_the_full_set():
    """An image depends only on its identity, so the test's small set has the full set's pixels."""
    entry = MANIFEST["categories"]["wood"]
    source = load_source(entry)
    one = make_sample(source, entry, MANIFEST, rng_for(MANIFEST["seed"], "wood", "test", "pit", 1), "pit")
    two = make_sample(source, entry, small_manifest(MANIFEST), rng_for(MANIFEST["seed"], "wood", "test", "pit", 1),
                      "pit")
    assert np.array_equal(one.image, two.image) and np.array_equal(one.mask, two.mask)


@pytest.mark.parametrize("kind", DEFECT_KINDS)
@pytest.mark.parametrize("subtle", [False, True])
def test_mask_matches_the_defect(kind, subtle):
    """Where the renderer changed the surface is where the mask says (before the camera adds noise)."""
    entry = MANIFEST["categories"]["regolith"]
    source = load_source(entry)
    for i in range(3):
        rng = rng_for(3, kind, i)
        surface = crop(source, entry, MANIFEST["nuisance"], MANIFEST["size"], rng)
        drawn = RENDERERS[kind](surface, rng, subtle)
        change = np.abs(drawn.image - surface).max(axis=2)
        assert drawn.mask.sum() >= 4, (kind, i)
        assert drawn.mask.mean() < 0.08, "defects are local"
        near = cv2.dilate(drawn.mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        changed = change > 4
        assert changed[near].sum() >= 0.9 * changed.sum(), (kind, i, "change outside the mask")
        assert change[drawn.mask].mean() > 3 * (change[~near].mean() + 0.1), (kind, i)


def test_subtle_defects_are_weaker():
    entry = MANIFEST["categories"]["fundus"]
    source = load_source(entry)
    snr = {flag: np.median([make_sample(source, entry, MANIFEST, rng_for(5, k, i), k, flag).snr
                            for k in ("stain", "scratch", "pit") for i in range(6)]) for flag in (False, True)}
    assert snr[True] < snr[False]


def test_written_layout_and_attributes(tmp_path):
    small = small_manifest(MANIFEST, train_good=2, good=2, per_kind=4)
    base = write_category(tmp_path, "petals", small)
    for split in (base, base / "validation"):
        records = json.loads((split / "defects.json").read_text())
        assert len(records) == 4 * len(DEFECT_KINDS)
        assert sum(r["subtle"] for r in records.values()) == len(DEFECT_KINDS)  # a quarter are subtle
        for name, r in records.items():
            mask = cv2.imread(str(split / "ground_truth" / r["kind"] / name.split("/")[-1].replace(
                ".png", "_mask.png")), cv2.IMREAD_GRAYSCALE)
            assert (mask > 0).sum() == r["area"] > 0
    assert len(list((base / "train" / "good").glob("*.png"))) == 2


def test_reserved_photographs_are_refused():
    for name in ("brick", "gravel", "grass"):
        with pytest.raises(ValueError, match="reserved"):
            source_path({"package": "skimage", "file": f"data/{name}.png"})


def test_source_digest_is_checked():
    entry = dict(MANIFEST["categories"]["wood"], sha256="0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        load_source(entry)


def test_visibility_snr():
    rng = np.random.default_rng(0)
    image = rng.normal(100, 5, (64, 64)).astype(np.float32)
    mask = np.zeros((64, 64), bool)
    mask[28:36, 28:36] = True
    image[mask] += 10  # two ring standard deviations
    assert visibility_snr(image, mask) == pytest.approx(2.0, abs=0.3)
    assert visibility_snr(image, np.zeros_like(mask)) == 0.0


def test_visibility_floor_redraws_only_invisible_defects(tmp_path):
    """With the floor, every defect reaches it (or says it did not); good images and defects that were
    visible at the first draw are the same pixels as in the set without the floor."""
    small = small_manifest(MANIFEST, train_good=1, good=1, per_kind=4)
    assert small["visibility_floor"]["clear"] >= 1.0
    no_floor = {k: v for k, v in small.items() if k != "visibility_floor"}
    floored = write_category(tmp_path / "floor", "petals", small)
    plain = write_category(tmp_path / "plain", "petals", no_floor)
    with_floor = json.loads((floored / "defects.json").read_text())
    without = json.loads((plain / "defects.json").read_text())
    assert (floored / "test/good/000.png").read_bytes() == (plain / "test/good/000.png").read_bytes()
    redrawn = 0
    for name, r in with_floor.items():
        floor = small["visibility_floor"]["subtle" if r["subtle"] else "clear"]
        assert r["snr"] >= floor or r["below_floor"], (name, r)
        if r["redraws"] == 0:
            assert (floored / name).read_bytes() == (plain / name).read_bytes(), name
            assert r["snr"] == without[name]["snr"]
        else:
            redrawn += 1
            assert without[name]["snr"] < floor <= r["snr"] or r["below_floor"], (name, r, without[name])
    assert redrawn > 0, "petals has defects below the floor at the first draw; the floor must redraw some"
    assert sum(r["below_floor"] for r in with_floor.values()) <= 1
