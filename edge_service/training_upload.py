"""Checking a training job's images before anything runs: zips of good and labelled defect images, and the
stored originals of good results, unpacked into a staging folder (removed whole on any refusal).

Refused, with the member named: a path that is absolute or climbs out (``..``), a symbolic link, an
encrypted member, a file that is not an image by its name or does not decode (Pillow, header then pixels),
an image of another size or channel count than the job's first one, fewer than :data:`MIN_GOOD_IMAGES` good
images, and zip bombs: more members than the limit, or more bytes unpacked than the limit (declared sizes
summed before anything is written, and counted again while writing). Folders, hidden files and macOS'
``__MACOSX/`` entries are passed over.

A defects zip holds ``defect/<kind>/<name>.<ext>`` (or ``defect/<name>.<ext>``: kind ``defect``) and,
optionally, masks ``ground_truth/<kind>/<name>_mask.png`` (non-zero = defect), the MVTec AD names.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from edge_service.settings import TrainingSettings

# the suffixes the trainer reads (inspection.imaging.IMAGE_SUFFIXES; not imported: cv2 stays out of the service)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MIN_GOOD_IMAGES = 10  # 8 for the memory bank (the trainer's minimum) and 2 held out for calibration
MIN_SIDE = 32
_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CHUNK = 1024 * 1024
_CHANNELS = {"P": 3, "PA": 4}  # palette images decode to colour


class UploadRejected(ValueError):
    """A training upload that is refused; the message names the member and the problem."""


@dataclass(frozen=True)
class ImageShape:
    width: int
    height: int
    channels: int

    def __str__(self) -> str:
        return f"{self.width}x{self.height} pixels, {self.channels} channel(s)"


@dataclass
class StagedImages:
    """What was unpacked into the staging folder: good images and defect images by kind, with their masks."""

    good: list[Path] = field(default_factory=list)
    defects: dict[str, list[Path]] = field(default_factory=dict)
    masks: int = 0
    shape: ImageShape | None = None


def image_shape(path: Path, member: str, max_pixels: int) -> ImageShape:
    """Size and channels of an image file, decoded in full (so a corrupt one is found); refused with the
    member named when it is no image, too large or too small."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise UploadRejected(f"{member}: {width}x{height} pixels; the limit is {max_pixels} pixels")
            channels = _CHANNELS.get(image.mode, len(image.getbands()))
            image.load()
    except UploadRejected:
        raise
    except (OSError, SyntaxError, ValueError, zlib.error, Image.DecompressionBombError):
        raise UploadRejected(f"{member}: not a decodable image") from None
    if min(width, height) < MIN_SIDE:
        raise UploadRejected(f"{member}: {width}x{height} pixels; images must be at least {MIN_SIDE}x{MIN_SIDE}")
    return ImageShape(width, height, channels)


def check_same_shape(staged: StagedImages, shape: ImageShape, member: str) -> None:
    """Every image of a job has the first one's size and channel count."""
    if staged.shape is None:
        staged.shape = shape
    elif shape != staged.shape:
        raise UploadRejected(f"{member}: {shape}; the job's other images are {staged.shape} (every image of a "
                             "training job must have the same size and channel count)")


def _member_name(info: zipfile.ZipInfo, what: str) -> str | None:
    """The member's path if it is a file to take, None for one to pass over; refused if unsafe."""
    name = info.filename
    label = f"{what} zip member {name!r}"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UploadRejected(f"{label}: absolute path (paths inside the zip must be relative)")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UploadRejected(f"{label}: path leaves the zip's folder ('..')")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UploadRejected(f"{label}: symbolic link (only plain files are taken)")
    if info.is_dir() or not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
        return None
    if info.flag_bits & 0x1:
        raise UploadRejected(f"{label}: encrypted")
    return "/".join(parts)


def open_zip(upload: BinaryIO, what: str, limits: TrainingSettings) -> tuple[zipfile.ZipFile, list[tuple[
        zipfile.ZipInfo, str]]]:
    """The zip and its members to take (info, path), after the name, count and declared-size checks."""
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UploadRejected(f"{what}: not a zip file") from None
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise UploadRejected(f"{what} zip has {len(infos)} members; the limit is {limits.max_members}")
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_unpacked_bytes:
        raise UploadRejected(f"{what} zip unpacks to {declared} bytes; the limit is {limits.max_unpacked_bytes}")
    members = [(info, name) for info in infos if (name := _member_name(info, what)) is not None]
    return archive, members


class UnpackBudget:
    """Bytes written so far against the unpacked-size limit (declared sizes may lie; this counts the real ones)."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def copy(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, label: str) -> None:
        try:
            with archive.open(info) as src, dest.open("wb") as out:
                while chunk := src.read(_CHUNK):
                    self.used += len(chunk)
                    if self.used > self.limit:
                        raise UploadRejected(f"{label}: the upload unpacks past {self.limit} bytes, the limit")
                    out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise UploadRejected(f"{label}: cannot be unpacked ({exc})") from None


def _image_suffix(name: str, label: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise UploadRejected(f"{label}: not an image (takes {', '.join(IMAGE_SUFFIXES)})")
    return suffix


def _flat_name(name: str, suffix: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name[: -len(suffix)].replace("/", "__"))[:150] or "image"
    candidate, n = stem + suffix, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}_{n}{suffix}"
    taken.add(candidate)
    return candidate


def unpack_good(upload: BinaryIO, dest: Path, staged: StagedImages, limits: TrainingSettings,
                budget: UnpackBudget) -> None:
    """Every image member of the good zip (any folder layout) into ``dest``."""
    archive, members = open_zip(upload, "good images", limits)
    dest.mkdir(parents=True, exist_ok=True)
    taken = {p.name for p in dest.iterdir()}
    with archive:
        for info, name in members:
            label = f"good images zip member {name!r}"
            path = dest / _flat_name(name, _image_suffix(name, label), taken)
            budget.copy(archive, info, path, label)
            check_same_shape(staged, image_shape(path, label, limits.max_pixels), label)
            staged.good.append(path)


def _defect_place(name: str, label: str) -> tuple[str, str, bool]:
    """(kind, file stem, is mask) of a defects zip member."""
    parts = name.split("/")
    if parts[0] == "defect" and len(parts) in (2, 3):
        kind = parts[1] if len(parts) == 3 else "defect"
        is_mask = False
    elif parts[0] == "ground_truth" and len(parts) == 3:
        kind, is_mask = parts[1], True
    else:
        raise UploadRejected(f"{label}: not in the defects layout (defect/<kind>/<name>.png, optional masks "
                             "ground_truth/<kind>/<name>_mask.png)")
    if not _KIND.match(kind) or kind == "good":
        raise UploadRejected(f"{label}: defect kind {kind!r} must be letters, digits, '_', '.' or '-' and not 'good'")
    stem = Path(parts[-1]).stem
    if is_mask:
        if not stem.endswith("_mask"):
            raise UploadRejected(f"{label}: a mask's name must end in _mask (ground_truth/<kind>/<name>_mask.png)")
        stem = stem[: -len("_mask")]
        if Path(parts[-1]).suffix.lower() != ".png":
            raise UploadRejected(f"{label}: masks must be PNG files (ground_truth/<kind>/<name>_mask.png)")
    return kind, stem, is_mask


def unpack_defects(upload: BinaryIO, test_dir: Path, truth_dir: Path, staged: StagedImages,
                   limits: TrainingSettings, budget: UnpackBudget) -> None:
    """Defect images into ``test_dir/<kind>/`` and masks into ``truth_dir/<kind>/<stem>_mask<ext>`` (the
    evaluation's MVTec layout); every mask must belong to an image of the zip and have its size."""
    archive, members = open_zip(upload, "defect images", limits)
    masks: list[tuple[str, str, ImageShape, str]] = []
    with archive:
        for info, name in members:
            label = f"defect images zip member {name!r}"
            suffix = _image_suffix(name, label)
            kind, stem, is_mask = _defect_place(name, label)
            folder = (truth_dir if is_mask else test_dir) / kind
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / (f"{stem}_mask.png" if is_mask else f"{stem}{suffix}")
            if path.exists() or (not is_mask and any(folder.glob(f"{glob_escape(stem)}.*"))):
                raise UploadRejected(f"{label}: a second file for {kind}/{stem}")
            budget.copy(archive, info, path, label)
            shape = image_shape(path, label, limits.max_pixels)
            if is_mask:
                masks.append((kind, stem, shape, label))
                continue
            check_same_shape(staged, shape, label)
            staged.defects.setdefault(kind, []).append(path)
    _check_masks(masks, staged)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _check_masks(masks: list[tuple[str, str, ImageShape, str]], staged: StagedImages) -> None:
    for kind, stem, shape, label in masks:
        if not any(p.stem == stem for p in staged.defects.get(kind, [])):
            raise UploadRejected(f"{label}: mask without a defect image defect/{kind}/{stem}.*")
        if staged.shape and (shape.width, shape.height) != (staged.shape.width, staged.shape.height):
            raise UploadRejected(f"{label}: {shape.width}x{shape.height} pixels; its image is "
                                 f"{staged.shape.width}x{staged.shape.height}")
        staged.masks += 1


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
