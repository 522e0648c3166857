"""Frame-to-model mapping (inspection.model.tiling): tile layout, stitching by the maximum, the checks that
need no frame (config load, command-line options) and those that do (at the frame: the line keeps running and
counts the frame failed), and the record's frame_mapping field at ingest."""

from __future__ import annotations

import json
import shutil

import cv2
import httpx
import numpy as np
import pytest
from line_support import write_config
from service_support import make_result
from trigger_support import TriggeredRunner, outbox_records, trigger_config
from typer.testing import CliRunner

from inspection.cli import app
from inspection.imaging import save_image
from inspection.line.config import ConfigError, load_config, parse_config
from inspection.line.outbox import Outbox
from inspection.line.runner import LineRunner
from inspection.model.metadata import read_metadata
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path
from inspection.model.tiling import (
    Box,
    FrameMapping,
    FrameMappingError,
    axis_starts,
    border_band,
    plan_views,
    stitch_max,
)
from inspection.plant.records import StationState

STATION = {"site": "p", "area": "a", "line": "l", "cell": "c", "station": "s"}


@pytest.mark.parametrize(("length", "tile", "overlap", "starts"), [
    (1024, 256, 0.0, [0, 256, 512, 768]),  # divisible, no overlap: an exact grid
    (1000, 256, 0.0, [0, 248, 496, 744]),  # not divisible: spread so that the last tile ends at the edge
    (1024, 512, 0.25, [0, 256, 512]),
    (2448, 512, 0.25, [0, 323, 645, 968, 1291, 1613, 1936]),
    (512, 512, 0.5, [0]),  # the tile is the whole axis
    (300, 256, 0.9, [0, 22, 44]), (1000, 100, 0.9, list(range(0, 901, 10))),
])
def test_tiles_cover_the_axis_edge_to_edge_with_at_least_the_overlap(length, tile, overlap, starts):
    got = axis_starts(length, tile, overlap)
    assert got == starts
    assert got[0] == 0 and got[-1] + tile == length
    steps = np.diff(got)
    assert (steps <= tile * (1 - overlap) + 1).all() and (steps > 0).all()


def test_stitching_takes_the_maximum_where_tiles_overlap():
    views = (Box(0, 0, 4, 4), Box(2, 0, 4, 4))  # two 4x4 tiles on a 4x6 frame, overlapping in columns 2-3
    maps = np.stack([np.full((4, 4), 1.0, np.float32), np.full((4, 4), 3.0, np.float32)])
    maps[0, 1, 2] = 5.0  # inside the overlap, the first tile is higher here
    out = stitch_max(maps, views, (4, 6))
    assert out.shape == (4, 6) and out.dtype == np.float32
    assert (out[:, :2] == 1).all() and (out[:, 4:] == 3).all()  # edges: only one tile each
    assert out[1, 2] == 5 and out[0, 2] == 3 and out[3, 3] == 3


def _bordered_map(side: int, band: int, inside: float) -> np.ndarray:
    m = np.zeros((side, side), np.float32)  # a model's map: 0 on its excluded border, good interiors below 0
    m[band:side - band, band:side - band] = inside
    return m


def test_stitching_keeps_a_tiles_excluded_border_from_overriding_the_other_tiles_interior():
    band = border_band(1)  # one border patch: 8 px of 0 and the 4 px blended into the first kept patch
    assert band == 12 and border_band(0) == 0
    views = (Box(0, 0, 64, 64), Box(32, 0, 64, 64))  # overlapping in columns 32-63
    maps = np.stack([_bordered_map(64, 8, -1.0), _bordered_map(64, 8, -2.0)])
    out = stitch_max(maps, views, (64, 96), band=band)
    assert (out[12:52, 32:64] < 0).all()  # the overlap, away from the frame's outer band: no 0 seam
    assert (out[12:52, 32:44] == -1).all() and (out[12:52, 56:64] == -2).all()  # each from the other's interior
    assert (out[:8] == 0).all() and (out[:, :8] == 0).all() and (out[:, -8:] == 0).all()  # outer band: as before
    old = stitch_max(maps, views, (64, 96))
    assert (old[12:52, 56:64] == 0).all()  # without the band, tile 0's border drew a seam there
    single = stitch_max(maps[:1], views[:1], (64, 64), band=band)
    assert np.array_equal(single, maps[0])  # one view: its map unchanged, border included


def test_stitched_tiles_of_a_bordered_model_have_no_seam_and_pass_when_nothing_is_above_threshold():
    model = InspectionModel.load(default_model_path())
    assert model.meta.head.border == 1
    plan = plan_views(FrameMapping(mode="tiles", tile_px=256), (256, 448), model.input_size)
    assert [v.x for v in plan.views] == [0, 192]
    maps = np.stack([_bordered_map(256, 8, -0.5), _bordered_map(256, 8, -0.5)])
    result = model.postprocess_views(plan, maps, np.array([-0.5, -0.5], np.float32))
    assert (result.anomaly_map[12:244, 12:436] == -0.5).all()  # the seams at columns 192-199, 248-255: gone
    assert result.verdict == "PASS" and result.regions == []


def test_stitching_resizes_each_map_to_its_tile_and_fills_what_no_tile_covers():
    views = (Box(10, 20, 30, 16),)  # non-divisible tile size: 8x8 map -> 30x16 box
    m = np.zeros((1, 8, 8), np.float32)
    m[0, :, 4:] = 2.0
    out = stitch_max(m, views, (50, 60), fill=-1.0)
    assert (out[:20] == -1).all() and (out[:, :10] == -1).all() and (out[36:] == -1).all()
    inside = out[20:36, 10:40]
    assert inside[:, 0] == pytest.approx(0) and inside[:, -1] == pytest.approx(2)
    with pytest.raises(ValueError, match="2 maps for 1 views"):
        stitch_max(np.zeros((2, 8, 8), np.float32), views, (50, 60))


def test_a_frame_is_planned_into_overlapping_tiles_of_the_model_aspect():
    plan = plan_views(FrameMapping(mode="tiles", tile_px=512, overlap=0.25), (2048, 2448), (256, 256))
    assert len(plan.views) == 7 * 5 and {(v.width, v.height) for v in plan.views} == {(512, 512)}
    assert max(v.x + v.width for v in plan.views) == 2448 and max(v.y + v.height for v in plan.views) == 2048
    wide = plan_views(FrameMapping(mode="tiles", tile_px=512), (2048, 2448), (256, 384))  # h x w model input
    assert {(v.width, v.height) for v in wide.views} == {(512, 341)}
    info = plan.describe()
    assert (info.mode, info.views, info.tile_width, info.overlap) == ("tiles", 35, 512, 0.25)
    assert (info.area.width, info.area.height) == (2448, 2048)


@pytest.mark.parametrize(("mapping", "frame_hw", "message"), [
    ({"mode": "roi", "roi": {"x": 2000, "y": 0, "width": 800, "height": 600}}, (2048, 2448),
     r"frame_mapping\.roi \(x=2000, y=0, width=800, height=600\) reaches \(2800, 600\), outside the 2448x2048"),
    ({"mode": "tiles", "tile_px": 512}, (400, 640),
     r"frame_mapping\.tile_px: 512 gives 512x512 px tiles .* larger than the 640x400 frame"),
    ({"mode": "tiles", "tile_px": 300, "roi": {"x": 0, "y": 0, "width": 400, "height": 200}}, (2048, 2448),
     r"frame_mapping\.tile_px: 300 .* larger than the 400x200 roi"),
])
def test_a_mapping_that_does_not_fit_the_frame_is_refused_naming_the_key(mapping, frame_hw, message):
    with pytest.raises(FrameMappingError, match=message):
        plan_views(FrameMapping(**mapping), frame_hw, (256, 256))


@pytest.mark.parametrize(("section", "message"), [
    ({"mode": "tiles", "tile_px": 512, "overlap": 0.95},
     r"frame_mapping\.overlap: overlap 0\.95 is outside \[0, 0\.9\]"),
    ({"mode": "tiles", "tile_px": 512, "overlap": -0.1}, r"frame_mapping\.overlap: overlap -0\.1 is outside"),
    ({"mode": "tiles"}, r"frame_mapping\.tile_px: mode 'tiles' needs the tile width"),
    ({"mode": "tiles", "tile_px": 16}, r"frame_mapping\.tile_px: Input should be greater than or equal to 32"),
    ({"mode": "tiles", "tile_px": 600, "roi": {"x": 0, "y": 0, "width": 500, "height": 500}},
     r"frame_mapping\.tile_px: tile_px 600 is wider than the roi \(500 px\)"),
    ({"mode": "roi"}, r"frame_mapping\.roi: mode 'roi' needs the rectangle"),
    ({"mode": "roi", "roi": {"x": -5, "y": 0, "width": 500, "height": 500}},
     r"frame_mapping\.roi\.x: Input should be greater than or equal to 0"),
    ({"mode": "roi", "roi": {"x": 0, "y": 0, "width": 500}}, r"frame_mapping\.roi\.height: Field required"),
    ({"mode": "resize", "tile_px": 512}, r"frame_mapping\.tile_px: only mode 'tiles' uses tile_px"),
    ({"mode": "resize", "roi": {"x": 0, "y": 0, "width": 500, "height": 500}},
     r"frame_mapping\.roi: mode 'resize' shows the whole frame"),
    ({"mode": "mosaic"}, r"frame_mapping\.mode: Input should be 'resize', 'roi' or 'tiles'"),
    ({"mode": "tiles", "tile_px": 512, "scale": 2}, r"frame_mapping\.scale: unknown key"),
    ({"mode": "tiles", "tile_px": 512, "max_batch": 0}, r"frame_mapping\.max_batch: Input should be greater"),
    ({"mode": "roi", "roi": {"x": 0, "y": 0, "width": 64, "height": 64}, "max_batch": 8},
     r"frame_mapping\.max_batch: only mode 'tiles' uses max_batch"),
])
def test_bad_frame_mapping_config_is_refused_at_load_naming_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"station": STATION, "frame_mapping": section}, "station.toml")


def test_the_default_mapping_is_resize_and_a_good_one_loads():
    assert parse_config({"station": STATION}, "t").frame_mapping.mode == "resize"
    cfg = parse_config({"station": STATION, "frame_mapping": {"mode": "tiles", "tile_px": 512, "overlap": 0.2,
                        "roi": {"x": 0, "y": 0, "width": 2000, "height": 1500}}}, "t")
    assert cfg.frame_mapping.tile_px == 512 and cfg.frame_mapping.roi is not None


@pytest.mark.parametrize(("options", "message"), [
    (["--frame-mapping", "tiles"], "--tile-px: mode 'tiles' needs the tile width"),
    (["--frame-mapping", "tiles", "--tile-px", "512", "--overlap", "0.95"], "--overlap: overlap 0.95 is outside"),
    (["--frame-mapping", "roi", "--roi", "1,2,3"], "--roi '1,2,3': give X,Y,WIDTH,HEIGHT"),
    (["--frame-mapping", "roi", "--roi", "0,0,10,100"], "--roi width: Input should be greater than or equal"),
])
def test_inspect_refuses_bad_mapping_options_naming_the_option(tmp_path, samples, options, message):
    image = samples / "flange" / "test" / "good" / "000.png"
    res = CliRunner().invoke(app, ["inspect", str(image), "--out", str(tmp_path), *options])
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_inspect_in_tiles_mode_writes_the_mapping_and_names_images_it_does_not_fit(tmp_path, samples):
    big = np.tile(cv2.imread(str(samples / "flange" / "test" / "good" / "000.png")),
                  (4, 4, 1))[:, :, ::-1]  # 1024 x 1024
    save_image(tmp_path / "big.png", big)
    shutil.copy(samples / "flange" / "test" / "good" / "001.png", tmp_path / "small.png")  # 256 x 256
    res = CliRunner().invoke(app, ["inspect", str(tmp_path / "big.png"), str(tmp_path / "small.png"), "--out",
                                   str(tmp_path / "out"), "--frame-mapping", "tiles", "--tile-px", "512"])
    assert res.exit_code == 1, res.output  # one file failed
    assert "small.png: frame_mapping.tile_px: 512 gives 512x512 px tiles" in res.output
    record = json.loads((tmp_path / "out" / "big.json").read_text())
    assert record["frame_mapping"]["mode"] == "tiles" and record["frame_mapping"]["views"] == 9
    assert (record["image_width"], record["image_height"]) == (1024, 1024)
    assert not (tmp_path / "out" / "small.json").exists()


def test_the_line_counts_frames_the_mapping_does_not_fit_and_keeps_running(tmp_path, samples):
    folder = tmp_path / "in"
    folder.mkdir()
    good = samples / "flange" / "test" / "good"
    shutil.copy(good / "000.png", folder / "a-small.png")  # 256 x 256: smaller than one 512-px tile
    big = np.tile(cv2.imread(str(good / "001.png"))[:, :, ::-1], (3, 4, 1))
    save_image(folder / "b-big.png", big)  # 1024 x 768
    shutil.copy(good / "002.png", folder / "c-small.png")
    extra = '\n[frame_mapping]\nmode = "tiles"\ntile_px = 512\noverlap = 0.25\n'
    # results wait for a service that is down (port 9), so the record stays in the outbox to be read here
    cfg = load_config(write_config(tmp_path / "s.toml", f'kind = "folder"\npath = "{folder}"',
                                   service_url="http://127.0.0.1:9", extra=extra))
    runner = LineRunner(cfg)
    runner.start()
    runner.wait()
    runner.stop()
    st = runner.status()
    assert st["state"] in ("finished", "stopped"), st["state"]
    assert st["source"]["frames"] == 3 and st["source"]["failed"] == 2
    assert st["results"]["PASS"] + st["results"]["FAIL"] == 1
    box = Outbox(cfg.outbox)
    (entry,) = box.pending("http", 10)
    box.close()
    record = json.loads(entry.record)
    assert record["source"].endswith("b-big.png") and record["frame_mapping"]["views"] == 3 * 2
    assert (record["image_width"], record["image_height"]) == (1024, 768)


def test_the_service_accepts_the_frame_mapping_field_and_checks_it(service):
    mapping = {"mode": "tiles", "area": {"x": 0, "y": 0, "width": 256, "height": 256}, "views": 4,
               "tile_width": 128, "tile_height": 128, "overlap": 0.25}
    good = make_result() | {"frame_mapping": mapping}
    plain = {k: v for k, v in make_result().items() if k != "frame_mapping"}  # an older record: no such key
    res = service.post([good, plain])
    assert res.status_code == 200, res.text
    assert service.get(f"/api/v1/results/{good['inspection_id']}").json()["frame_mapping"] == mapping
    assert service.get(f"/api/v1/results/{plain['inspection_id']}").json().get("frame_mapping") is None
    outside = mapping | {"area": {"x": 100, "y": 0, "width": 256, "height": 256}}
    res = service.post([make_result() | {"frame_mapping": outside}])
    assert res.status_code == 422 and "frame_mapping.area (100, 0, 256 x 256) lies outside" in res.text, res.text
    res = service.post([make_result() | {"frame_mapping": mapping | {"overlap": 2.0}}])
    assert res.status_code == 422 and "results.0.frame_mapping.overlap" in res.text, res.text


def test_dataset_tiles_cuts_good_frames_as_the_station_will(tmp_path, samples):
    frames = tmp_path / "frames"
    frames.mkdir()
    good = samples / "flange" / "test" / "good"
    save_image(frames / "f1.png", np.tile(cv2.imread(str(good / "001.png"))[:, :, ::-1], (3, 4, 1)))  # 1024x768
    shutil.copy(good / "000.png", frames / "f2.png")  # 256 x 256: smaller than a tile
    res = CliRunner().invoke(app, ["dataset", "tiles", "--frames", str(frames), "--out", str(tmp_path / "tiles"),
                                   "--tile-px", "512", "--overlap", "0.25"])
    assert res.exit_code == 1, res.output
    assert "wrote 6 tiles of 1 frame(s)" in res.output and "f2.png: frame_mapping.tile_px: 512" in res.output
    tiles = sorted((tmp_path / "tiles").iterdir())
    assert [p.name for p in tiles] == [f"f1_t{i:03d}.png" for i in range(6)]
    assert cv2.imread(str(tiles[0])).shape == (512, 512, 3)
    res = CliRunner().invoke(app, ["dataset", "tiles", "--frames", str(frames), "--out", str(tmp_path / "t2"),
                                   "--tile-px", "512", "--overlap", "1.5"])
    assert res.exit_code == 2 and "--overlap: overlap 1.5 is outside" in res.output


def test_dataset_tiles_never_overwrites_tiles(tmp_path, samples):
    """Two frames with one stem (f.png, f.jpg) give tiles of their own; cutting again into the same folder at
    another tile size is refused before anything is written, instead of mixing the old scale's leftover tiles
    with the new ones for `inspection train`."""
    frames = tmp_path / "frames"
    frames.mkdir()
    image = np.tile(cv2.imread(str(samples / "flange" / "test" / "good" / "001.png"))[:, :, ::-1], (2, 2, 1))
    save_image(frames / "f.png", image)  # 512 x 512
    cv2.imwrite(str(frames / "f.jpg"), image[:, :, ::-1])
    out = tmp_path / "tiles"
    res = CliRunner().invoke(app, ["dataset", "tiles", "--frames", str(frames), "--out", str(out), "--tile-px", "256",
                                   "--overlap", "0.25"])
    assert res.exit_code == 0 and "wrote 18 tiles of 2 frame(s)" in res.output, res.output
    assert len(list(out.iterdir())) == 18
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    res = CliRunner().invoke(app, ["dataset", "tiles", "--frames", str(frames), "--out", str(out), "--tile-px", "128",
                                   "--overlap", "0.25"])
    assert res.exit_code == 2 and "already holds" in res.output and "frames_f_t000.png" in res.output, res.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.parametrize(("tile_px", "error"), [(512, "INSPECTION_FAILED"), (128, "NONE")])
def test_a_triggered_station_answers_every_trigger_whether_the_mapping_fits_or_not(tmp_path, tile_px, error):
    """256x256 simulated frames: 512-px tiles do not fit (an error result naming the key, the station stays
    Ready), 128-px tiles do (3 x 3 tiles, the record says so)."""
    cfg = trigger_config(tmp_path, frame_mapping={"mode": "tiles", "tile_px": tile_px, "overlap": 0.25})
    with TriggeredRunner(cfg) as runner, httpx.Client(timeout=30) as client:
        answers = [client.post(f"http://127.0.0.1:{cfg.status.port}/trigger", json={"part_id": f"T-{i}"}).json()
                   for i in range(2)]
        state = runner.trigger_mode.plant.core.snapshot().state if runner.trigger_mode else None
    assert [a["error"] for a in answers] == [error, error], answers
    assert state == StationState.READY
    if error == "NONE":
        records = outbox_records(cfg.outbox)
        assert [r["frame_mapping"]["views"] for r in records] == [9, 9]
        assert all((r["image_width"], r["image_height"]) == (256, 256) for r in records)
    else:
        assert "frame_mapping.tile_px: 512 gives 512x512 px tiles" in answers[0]["message"], answers[0]


def test_calibrate_scores_whole_frames_with_the_mapping(tmp_path, samples):
    model = tmp_path / "m.onnx"
    shutil.copy(default_model_path(), model)
    good = samples / "flange" / "test" / "good"
    res = CliRunner().invoke(app, ["calibrate", "--model", str(model), "--good", str(good), "--quiet",
                                   "--frame-mapping", "tiles", "--tile-px", "128", "--overlap", "0.25"])
    assert res.exit_code == 0, res.output
    meta = read_metadata(model)
    assert meta.good_scores.count == len(list(good.glob("*.png")))
    frame = cv2.imread(str(good / "000.png"))[:, :, ::-1]
    score = InspectionModel.load(model).inspect(frame, mapping=FrameMapping(mode="tiles", tile_px=128)).score
    assert meta.good_scores.min - 1e-4 <= score <= meta.good_scores.max + 1e-4  # scored as the station scores
    res = CliRunner().invoke(app, ["calibrate", "--model", str(model), "--good", str(good), "--frame-mapping",
                                   "roi"])
    assert res.exit_code == 2 and "--roi: mode 'roi' needs the rectangle" in res.output


def test_calibrate_passes_max_batch_through_as_the_station_does(tmp_path, samples, monkeypatch):
    good = samples / "flange" / "test" / "good"
    models = {name: tmp_path / f"{name}.onnx" for name in ("one", "split")}
    for path in models.values():
        shutil.copy(default_model_path(), path)
    calls: list[int] = []
    run = InspectionModel.run
    monkeypatch.setattr(InspectionModel, "run", lambda self, batch: calls.append(len(batch)) or run(self, batch))
    tiles = ["--frame-mapping", "tiles", "--tile-px", "128", "--overlap", "0.25"]  # 9 tiles of a 256x256 frame
    for name, extra in (("one", []), ("split", ["--max-batch", "4"])):
        calls.clear()
        res = CliRunner().invoke(app, ["calibrate", "--model", str(models[name]), "--good", str(good), "--quiet",
                                       *tiles, *extra])
        assert res.exit_code == 0, res.output
        assert set(calls) == ({9} if name == "one" else {4, 1})  # 9 tiles: calls of 4, 4 and 1
    one, split = (read_metadata(p) for p in models.values())
    assert split.threshold == pytest.approx(one.threshold, rel=1e-5)
    assert split.good_scores.max == pytest.approx(one.good_scores.max, rel=1e-5)
    res = CliRunner().invoke(app, ["calibrate", "--model", str(models["one"]), "--good", str(good), "--max-batch", "4"])
    assert res.exit_code == 2 and "--max-batch: only mode 'tiles' uses max_batch" in res.output
