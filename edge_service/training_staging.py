"""Building a training job's folder from what was sent: the good zip and the stored originals of good
results, the defects zip, checked (:mod:`training_upload`), then split into the memory bank and the
held-out images and laid out for the trainer and the evaluation (:mod:`training_worker`). Any refusal
removes the staging folder whole, so nothing is written half.

A result's original is a good training image when nobody disputed it: a PASS not reviewed as a confirmed
defect or unsure, or a FAIL a reviewer marked a false alarm.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine, select

from edge_service.database import results
from edge_service.image_store import ImageStore
from edge_service.settings import TrainingSettings
from edge_service.training_upload import (
    MIN_GOOD_IMAGES,
    StagedImages,
    UnpackBudget,
    UploadRejected,
    check_same_shape,
    image_shape,
    unpack_defects,
    unpack_good,
)

HOLDOUT_FRACTION = 0.15
MIN_HELD_OUT = 2
MAX_RESULT_IDS = 5000
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


@dataclass
class StagedJob:
    bank: int
    held_out: int
    defects: int
    masks: int
    sources: list[str]


def parse_result_ids(text: str | None) -> list[str]:
    """Ids separated by commas, spaces or line breaks; refused naming the first that is not a UUID."""
    ids = [t for t in re.split(r"[\s,]+", text or "") if t]
    if len(ids) > MAX_RESULT_IDS:
        raise UploadRejected(f"result_ids: {len(ids)} ids; at most {MAX_RESULT_IDS}")
    for i in ids:
        if not _UUID.match(i):
            raise UploadRejected(f"result_ids: {i[:60]!r} is not a result id (UUID)")
    return list(dict.fromkeys(i.lower() for i in ids))


def good_result_originals(engine: Engine, images: ImageStore, ids: list[str]) -> list[tuple[str, Path]]:
    """(id, file of its stored original) for each id, or UploadRejected naming the ids that do not qualify."""
    with engine.connect() as conn:
        rows = {r.inspection_id: r for r in conn.execute(select(
            results.c.inspection_id, results.c.verdict, results.c.review_state).where(
            results.c.inspection_id.in_(ids))).all()}
    unknown = [i for i in ids if i not in rows]
    if unknown:
        raise UploadRejected(f"result_ids: no result {', '.join(unknown[:5])}")
    disputed = [f"{i} ({rows[i].verdict}, {rows[i].review_state})" for i in ids if not _good(rows[i])]
    if disputed:
        raise UploadRejected(f"result_ids: not good parts: {', '.join(disputed[:5])} (takes PASS results not "
                             "reviewed as a defect or unsure, and FAILs reviewed as false alarms)")
    found = [(i, images.find(engine, i, "original")) for i in ids]
    missing = [i for i, f in found if f is None]
    if missing:
        raise UploadRejected(f"result_ids: no stored original image for {', '.join(missing[:5])}")
    return [(i, f[0]) for i, f in found if f is not None]


def _good(row) -> bool:
    if row.verdict == "PASS":
        return row.review_state in ("unreviewed", "false_alarm")
    return row.review_state == "false_alarm"


def stage(folder: Path, good_zip: BinaryIO | None, originals: list[tuple[str, Path]],
          defects_zip: BinaryIO | None, limits: TrainingSettings) -> StagedJob:
    """Fill ``folder`` (empty) with the job's images; on UploadRejected the caller removes it."""
    staged, budget = StagedImages(), UnpackBudget(limits.max_unpacked_bytes)
    pool = folder / "good"
    pool.mkdir()
    if good_zip is not None:
        unpack_good(good_zip, pool, staged, limits, budget)
    for inspection_id, path in originals:
        dest = pool / f"result-{inspection_id}{path.suffix}"
        shutil.copyfile(path, dest)
        label = f"result {inspection_id}"
        check_same_shape(staged, image_shape(dest, f"{label}'s original", limits.max_pixels), label)
        staged.good.append(dest)
    if len(staged.good) < MIN_GOOD_IMAGES:
        raise UploadRejected(f"{len(staged.good)} good image(s); a training job needs at least {MIN_GOOD_IMAGES} "
                             f"({MIN_GOOD_IMAGES - MIN_HELD_OUT} for the model, {MIN_HELD_OUT} held out to "
                             "calibrate its threshold; 100-300 covering the normal variation is better)")
    if defects_zip is not None:
        unpack_defects(defects_zip, folder / "eval" / "test", folder / "eval" / "ground_truth", staged, limits,
                       budget)
    held_out = _hold_out(staged.good, folder / "held_out")
    if staged.defects:
        (folder / "eval" / "test" / "good").mkdir(parents=True)
        for path in held_out:
            os.link(path, folder / "eval" / "test" / "good" / path.name)
    sources = (["zip"] if good_zip is not None else []) + (["results"] if originals else [])
    return StagedJob(len(staged.good) - len(held_out), len(held_out), sum(map(len, staged.defects.values())),
                     staged.masks, sources)


def _hold_out(good: list[Path], dest: Path) -> list[Path]:
    """Move a seeded-random share of the good images to ``dest`` (for calibration); the rest is the bank."""
    dest.mkdir()
    order = sorted(good, key=lambda p: p.name)
    random.Random(0).shuffle(order)
    n = max(MIN_HELD_OUT, round(len(order) * HOLDOUT_FRACTION))
    moved = []
    for path in order[:n]:
        target = dest / path.name
        path.replace(target)
        moved.append(target)
    return moved
