"""Frame-to-model mapping: how a camera frame, often much larger than the model's input, is shown to the model.

Modes (:class:`FrameMapping`, the station TOML's ``[frame_mapping]`` and the options of ``inspection inspect``):

- ``resize`` (the default): the whole frame resized to the model's input; one view. A 2448x2048 frame shown
  to a 256x256 model is shrunk ~9.5x, so a 12-pixel defect becomes about one pixel, far below one patch;
- ``roi``: one rectangle of the frame (``roi``, frame pixels), resized to the model's input; one view;
- ``tiles``: overlapping tiles of the frame (or of ``roi`` when given), ``tile_px`` frame pixels wide (the
  height follows the model's aspect ratio: square for square models), neighbours overlapping by at least
  ``overlap`` of a tile. Each tile is resized to the model's input and all tiles of a frame run as one batch
  (N, h, w, 3) through the unchanged ONNX model (``max_batch`` splits it into calls of at most that many, to
  bound the memory: 143 tiles of 256x256 in one batch took 2.5 GB). Their anomaly maps are resized back to
  the tiles' sizes and stitched into one frame-sized map, taking the maximum where tiles overlap; the image
  score is the maximum of the tiles' scores, and regions are found on the stitched map, in frame coordinates.

Tile positions along an axis of length L with tile side t: n = ceil((L - t) / (t (1 - overlap))) + 1 tiles,
the first at 0 and the last ending at L, the others spread evenly between (so the real overlap is at least
the one asked for, and sizes that are not multiples of the stride need no padding). Outside the inspected
area (an ROI) the stitched map is 0, the value the model gives its own excluded border. A tile's excluded
border (``border`` patches of the head, set to 0 in its map) is no measurement: where tiles overlap it never
overrides the other tile's interior, which is often below 0 (the maximum would otherwise draw 0-valued seams
along the tile edges); only where no interior reaches (the frame's outer band) does the map keep that 0.

Shapes: frame (H, W, 3) uint8; :class:`Box` (x, y, width, height) in frame pixels; the batch (N, h, w, 3)
uint8 at the model's input (h, w); the graph's maps (N, h, w) float32; the stitched map (H, W) float32.
Everything here is array work around the graph: the ONNX model and its numpy reference are untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from inspection.errors import InspectionError
from inspection.imaging import MIN_SIDE
from inspection.schema import FrameArea, FrameMappingInfo, FrameMappingMode

MAX_OVERLAP = 0.9
MAX_SIDE = 100_000  # pixels


class FrameMappingError(InspectionError):
    """A frame the configured mapping cannot be applied to: the ROI outside it, a tile larger than it."""


class Roi(BaseModel):
    """A rectangle of the frame, in frame pixels (x, y: its top-left corner)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: int = Field(ge=0, le=MAX_SIDE)
    y: int = Field(ge=0, le=MAX_SIDE)
    width: int = Field(ge=MIN_SIDE, le=MAX_SIDE)
    height: int = Field(ge=MIN_SIDE, le=MAX_SIDE)


class FrameMapping(BaseModel):
    """How frames are mapped to the model's input (see the module docstring); checks that need no frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: FrameMappingMode = Field(default="resize", description="resize | roi | tiles")
    roi: Roi | None = Field(default=None, validate_default=True, description="roi: the rectangle inspected; "
                            "tiles: optional, the tiles then cover only this rectangle")
    tile_px: int | None = Field(default=None, ge=MIN_SIDE, le=MAX_SIDE, validate_default=True,
                                description="tiles: a tile's width in frame pixels")
    overlap: float = Field(default=0.25, description="tiles: the least overlap of neighbouring tiles, as a "
                           "fraction of a tile, in [0, 0.9]")
    max_batch: int | None = Field(default=None, ge=1, le=4096, description="tiles: at most this many tiles per "
                                  "model call (bounds the memory; no faster or slower per tile); default: all "
                                  "tiles of a frame in one batch")

    @field_validator("roi")
    @classmethod
    def _roi_for_mode(cls, roi: Roi | None, info: ValidationInfo) -> Roi | None:
        mode = info.data.get("mode")
        if mode == "roi" and roi is None:
            raise ValueError("mode 'roi' needs the rectangle: roi = { x = .., y = .., width = .., height = .. }")
        if mode == "resize" and roi is not None:
            raise ValueError("mode 'resize' shows the whole frame; set mode = 'roi' (or 'tiles') to use an roi")
        return roi

    @field_validator("tile_px")
    @classmethod
    def _tile_for_mode(cls, tile_px: int | None, info: ValidationInfo) -> int | None:
        mode = info.data.get("mode")
        if mode == "tiles" and tile_px is None:
            raise ValueError("mode 'tiles' needs the tile width in frame pixels (tile_px)")
        if mode in ("resize", "roi") and tile_px is not None:
            raise ValueError(f"only mode 'tiles' uses tile_px (mode is {mode!r})")
        roi = info.data.get("roi")
        if tile_px is not None and roi is not None and tile_px > roi.width:
            raise ValueError(f"tile_px {tile_px} is wider than the roi ({roi.width} px)")
        return tile_px

    @field_validator("max_batch")
    @classmethod
    def _batch_for_tiles(cls, max_batch: int | None, info: ValidationInfo) -> int | None:
        if max_batch is not None and info.data.get("mode") != "tiles":
            raise ValueError("only mode 'tiles' uses max_batch (the other modes run one image per frame)")
        return max_batch

    @field_validator("overlap")
    @classmethod
    def _overlap_range(cls, overlap: float) -> float:
        if not 0 <= overlap <= MAX_OVERLAP:  # NaN fails too
            raise ValueError(f"overlap {overlap} is outside [0, {MAX_OVERLAP}] (a fraction of a tile)")
        return overlap


RESIZE = FrameMapping()


@dataclass(frozen=True)
class Box:
    """A rectangle in frame pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)


@dataclass(frozen=True)
class ViewPlan:
    """Where the model looks in one frame: the inspected area and the views cut from it (one unless tiles)."""

    mapping: FrameMapping
    frame_hw: tuple[int, int]
    area: Box
    views: tuple[Box, ...]

    def describe(self) -> FrameMappingInfo:
        """The record's ``frame_mapping`` field."""
        tiles = self.mapping.mode == "tiles"
        first = self.views[0]
        return FrameMappingInfo(mode=self.mapping.mode, area=FrameArea(x=self.area.x, y=self.area.y,
                                width=self.area.width, height=self.area.height), views=len(self.views),
                                tile_width=first.width if tiles else None,
                                tile_height=first.height if tiles else None,
                                overlap=self.mapping.overlap if tiles else None)


def axis_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Tile starts along one axis: the first at 0, the last ending at ``length``, evenly spread, neighbours
    overlapping by at least ``overlap`` of ``tile``. Needs ``MIN_SIDE <= tile <= length``."""
    if not 0 < tile <= length:
        raise ValueError(f"tile {tile} must lie in (0, {length}]")
    if tile == length:
        return [0]
    stride = tile * (1 - overlap)
    n = math.ceil((length - tile) / stride - 1e-9) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def tile_size(tile_px: int, model_hw: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a tile in frame pixels: ``tile_px`` wide, the model's aspect ratio."""
    mh, mw = model_hw
    return max(1, round(tile_px * mh / mw)), tile_px


def _area(mapping: FrameMapping, frame_hw: tuple[int, int]) -> Box:
    h, w = frame_hw
    roi = mapping.roi
    if roi is None:
        return Box(0, 0, w, h)
    if roi.x + roi.width > w or roi.y + roi.height > h:
        raise FrameMappingError(f"frame_mapping.roi (x={roi.x}, y={roi.y}, width={roi.width}, height={roi.height}) "
                                f"reaches ({roi.x + roi.width}, {roi.y + roi.height}), outside the {w}x{h} frame")
    return Box(roi.x, roi.y, roi.width, roi.height)


def plan_views(mapping: FrameMapping, frame_hw: tuple[int, int], model_hw: tuple[int, int]) -> ViewPlan:
    """The views of a frame of ``frame_hw`` (height, width) for a model of input ``model_hw``; raises
    :class:`FrameMappingError` naming the key when the mapping does not fit this frame."""
    area = _area(mapping, frame_hw)
    if mapping.mode != "tiles" or mapping.tile_px is None:
        return ViewPlan(mapping, frame_hw, area, (area,))
    th, tw = tile_size(mapping.tile_px, model_hw)
    if th > area.height or tw > area.width:
        where = "roi" if mapping.roi is not None else "frame"
        raise FrameMappingError(f"frame_mapping.tile_px: {mapping.tile_px} gives {tw}x{th} px tiles (the model's "
                                f"{model_hw[1]}x{model_hw[0]} aspect), larger than the {area.width}x{area.height} "
                                f"{where}")
    views = tuple(Box(area.x + x, area.y + y, tw, th) for y in axis_starts(area.height, th, mapping.overlap)
                  for x in axis_starts(area.width, tw, mapping.overlap))
    return ViewPlan(mapping, frame_hw, area, views)


def resize_to(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize to (height, width): area averaging when shrinking, bilinear when enlarging."""
    h, w = hw
    if image.shape[:2] == (h, w):
        return image
    shrink = image.shape[0] > h or image.shape[1] > w
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def view_batch(image: np.ndarray, plan: ViewPlan, model_hw: tuple[int, int]) -> np.ndarray:
    """(N, h, w, 3) uint8: each view of the frame (H, W, 3) resized to the model's input."""
    return np.stack([resize_to(image[v.slices], model_hw) for v in plan.views])


def border_band(border_patches: int, stride: int = 8) -> int:
    """Map pixels (at the model's input) at each edge of a model's map that its excluded border of
    ``border_patches`` patches reaches: the border patches (0) and the half patch the bilinear upsampling
    (half-pixel coordinates) blends them into the first kept patch; 0 without a border."""
    return stride * border_patches + stride // 2 if border_patches > 0 else 0


def _band_in_box(band: int, map_side: int, box_side: int) -> int:
    """The band of ``band`` map pixels in a box side of ``box_side`` pixels: every box pixel whose bilinear
    (half-pixel) source reaches into the band, at most half the side."""
    if band <= 0:
        return 0
    return min(math.ceil((band + 0.5) * box_side / map_side - 0.5), box_side // 2)


def _edge_strips(b_h: int, b_w: int, h: int, w: int) -> tuple[tuple[slice, slice], ...]:
    return ((slice(0, b_h), slice(0, w)), (slice(h - b_h, h), slice(0, w)),
            (slice(0, h), slice(0, b_w)), (slice(0, h), slice(w - b_w, w)))


def stitch_max(maps: np.ndarray, views: tuple[Box, ...], frame_hw: tuple[int, int], fill: float = 0.0,
               area: Box | None = None, band: int = 0) -> np.ndarray:
    """(H, W) float32: each map (N, h, w) resized (bilinear) to its view's box and placed there, the maximum
    where views overlap; ``fill`` where no view lies. ``area``: a box the views are known to cover (a plan's
    area), which spares a pass over the frame to find what they left uncovered.

    ``band`` (:func:`border_band`): map pixels at each edge of a map that the model's excluded border reaches
    (its value there is 0, not a measurement). Such a band never overrides another view's interior where
    they overlap (it counts as -inf for the maximum); a pixel that only bands cover keeps their maximum, as
    a single view's map does."""
    if len(maps) != len(views):
        raise ValueError(f"{len(maps)} maps for {len(views)} views")
    whole = area is not None and (area.x, area.y, area.width, area.height) == (0, 0, frame_hw[1], frame_hw[0])
    canvas = np.full(frame_hw, -np.inf if whole or area is None else fill, np.float32)
    if area is not None and not whole:
        canvas[area.slices] = -np.inf
    edges = np.full(frame_hw, -np.inf, np.float32) if band > 0 else None
    for m, v in zip(maps, views, strict=True):
        up = m if m.shape == (v.height, v.width) else cv2.resize(m, (v.width, v.height),
                                                                   interpolation=cv2.INTER_LINEAR)
        if edges is not None:
            b_h, b_w = _band_in_box(band, m.shape[0], v.height), _band_in_box(band, m.shape[1], v.width)
            up = up.copy() if up is m else up
            for ys, xs in _edge_strips(b_h, b_w, v.height, v.width):
                target = edges[v.slices][ys, xs]
                np.maximum(target, up[ys, xs], out=target)
                up[ys, xs] = -np.inf
        target = canvas[v.slices]
        np.maximum(target, up, out=target)
    if edges is not None:
        inside = (slice(None), slice(None)) if area is None else area.slices
        c, e = canvas[inside], edges[inside]
        np.copyto(c, e, where=np.isneginf(c))  # where no band lies either, both are -inf
    if area is None:
        np.copyto(canvas, np.float32(fill), where=np.isneginf(canvas))
    return canvas
