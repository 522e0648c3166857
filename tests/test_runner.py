"""The line runner: config validation, sources and their policies, bad frames, watchdog, outbox."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict

import cv2
import numpy as np
import pytest
from line_support import write_config
from typer.testing import CliRunner

from inspection.cli import app
from inspection.line.config import ConfigError, load_config, parse_config
from inspection.line.outbox import REJECTED, Outbox
from inspection.line.runner import LineRunner
from inspection.sources.camera import OpenCVSource
from inspection.sources.frame import SourceError, SourceFinished
from inspection.sources.simulated import SimulatedLine


def test_config_errors_name_the_key(tmp_path):
    cfg = write_config(tmp_path / "s.toml", 'kind = "folder"')
    with pytest.raises(ConfigError, match=r"source: source kind 'folder' needs source\.path"):
        load_config(cfg)
    cfg.write_text(cfg.read_text().replace('kind = "folder"', 'kind = "simulated"\nrate = -3\nspeed = 1'))
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "source.rate: Input should be greater than 0" in str(err.value)
    assert "source.speed: unknown key" in str(err.value)

    cfg.write_text('[station]\nsite = "a/b"\n')
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "station.site: String should match pattern" in str(err.value) and "station.area: Field required" in str(
        err.value)
    cfg.write_text("this is [not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(cfg)
    res = CliRunner().invoke(app, ["run", "--config", str(tmp_path / "missing.toml")])
    assert res.exit_code == 2 and "no such config file" in res.output


def test_only_the_simulated_flange_line_may_leave_out_the_model(tmp_path):
    station = {"site": "s", "area": "a", "line": "l", "cell": "c", "station": "st"}
    assert parse_config({"station": station}, "t").model.path is None  # simulated flange: the default model
    for source in ({"kind": "folder", "path": str(tmp_path)}, {"kind": "simulated", "part_type": "knurled_plate"}):
        with pytest.raises(ConfigError, match=r"t: model\.path: .* needs a model file"):
            parse_config({"station": station, "source": source}, "t")


def test_secrets_are_never_printed(tmp_path, caplog):
    secret = "insp_super-secret-value"
    cfg = write_config(tmp_path / "s.toml", 'kind = "folder"\npath = "' + str(tmp_path / "none") + '"',
                       service_url="http://127.0.0.1:9", extra=f'token = "{secret}"\n')
    cfg.write_text(cfg.read_text().replace('url = "http://127.0.0.1:9"\n' + f'token = "{secret}"',
                                           f'url = "http://127.0.0.1:9"\ntoken = "{secret}"'))
    loaded = load_config(cfg)
    assert loaded.service.secret() == secret
    assert secret not in repr(loaded) and secret not in str(loaded.model_dump())
    caplog.set_level(logging.DEBUG)
    res = CliRunner().invoke(app, ["run", "--config", str(cfg), "--duration", "1", "--flush-timeout", "1", "-v"])
    assert secret not in res.output and secret not in caplog.text


def _jpeg(path, img):
    path.write_bytes(cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes())


def test_watch_folder_inspects_once_and_moves_files_and_skips_corrupt_frames(tmp_path, samples):
    watch = tmp_path / "drop"
    watch.mkdir()
    # results wait for a service that is down (port 9); MQTT is switched off, so nothing may wait for it
    cfg = load_config(write_config(tmp_path / "s.toml", f'kind = "watch"\npath = "{watch}"',
                                   service_url="http://127.0.0.1:9"))
    runner = LineRunner(cfg)
    runner.start()
    try:
        for name in ("000.png", "001.png"):
            shutil.copy(samples / "flange" / "test" / "good" / name, watch / f"part-{name}")
        shutil.copy(samples / "flange" / "test" / "crack" / "000.png", watch / "part-crack.png")
        good = cv2.imread(str(samples / "flange" / "test" / "good" / "002.png"))
        (watch / "truncated.jpg").write_bytes(cv2.imencode(".jpg", good)[1].tobytes()[:3000])
        (watch / "empty.png").write_bytes(b"")
        cv2.imwrite(str(watch / "gray.png"), np.zeros((64, 64), np.uint8))  # mono: converted, inspected
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(list((watch / "done").glob("*"))) + len(
                list((watch / "failed").glob("*"))) < 6:
            time.sleep(0.1)
    finally:
        runner.stop()
    assert sorted(p.name for p in (watch / "done").iterdir()) == ["gray.png", "part-000.png", "part-001.png",
                                                                 "part-crack.png"]
    assert sorted(p.name for p in (watch / "failed").iterdir()) == ["empty.png", "truncated.jpg"]
    assert not list(watch.glob("*.png")) and not list(watch.glob("*.jpg"))
    st = runner.status()
    assert st["source"]["corrupt"] == 2 and sum(st["results"].values()) == 4 and st["results"]["FAIL"] >= 1
    box = Outbox(cfg.outbox)
    waiting = box.pending("http", 100)
    assert box.stats()["http"].depth == 4 and box.stats()["mqtt"].depth == 0  # switched off: not queued
    box.close()
    records = {json.loads(e.record)["source"]: json.loads(e.record) for e in waiting}
    assert sorted(records) == ["gray.png", "part-000.png", "part-001.png", "part-crack.png"]  # each once
    assert [records[n]["verdict"] for n in ("part-000.png", "part-001.png", "part-crack.png")] == [
        "PASS", "PASS", "FAIL"]
    assert records["gray.png"]["input_conversion"] and not records["part-000.png"]["input_conversion"]
    # the FAIL's images were kept locally
    assert len(list((tmp_path / "images").rglob("*-overlay.jpg"))) >= 1


def test_folder_source_never_drops(tmp_path, samples):
    folder = tmp_path / "in"
    shutil.copytree(samples / "flange" / "test" / "good", folder)
    cfg = load_config(write_config(tmp_path / "s.toml", f'kind = "folder"\npath = "{folder}"\nqueue_size = 1'))
    runner = LineRunner(cfg)
    runner.start()
    runner.wait()
    runner.stop()
    st = runner.status()
    assert st["source"]["frames"] == 12 and st["source"]["dropped"] == 0
    assert st["results"]["PASS"] + st["results"]["FAIL"] == 12 and st["source"]["state"] == "finished"


def test_live_source_keeps_the_freshest_frame_and_counts_drops(tmp_path):
    cfg = load_config(write_config(tmp_path / "s.toml", 'kind = "simulated"\nrate = 400\nqueue_size = 1'))
    runner = LineRunner(cfg)
    runner.start()
    deadline = time.monotonic() + 60
    while runner.counters.frames < 300 and time.monotonic() < deadline:
        time.sleep(0.1)
    runner.stop()
    st = runner.status()
    done = st["results"]["PASS"] + st["results"]["FAIL"]
    assert st["source"]["dropped"] > 0  # 400 parts/s is more than one core inspects
    assert st["source"]["frames"] == done + st["source"]["dropped"]  # every frame inspected or counted


def test_watchdog_reopens_a_dead_stream_and_stops_promptly(tmp_path):
    cfg = load_config(write_config(tmp_path / "s.toml", 'kind = "stream"\nurl = "rtsp://127.0.0.1:9/none"'))
    runner = LineRunner(cfg)
    runner.start()
    seen = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not ("error" in seen and runner.watchdog.open_failures >= 2):
        seen.add(runner.status()["source"]["state"])
        time.sleep(0.02)
    assert "error" in seen and runner.watchdog.open_failures >= 2, seen  # failed, then tried again
    assert "running" not in seen and runner.status()["state"] == "running"  # a source fault is not a runner error
    t = time.monotonic()
    runner.stop()
    assert time.monotonic() - t < 15


class _StallingSource(SimulatedLine):
    """Gives a few frames, then goes silent until reopened."""

    def __init__(self):
        super().__init__(rate=50, pool_size=8)
        self.opens = 0

    def open(self):
        super().open()
        self.opens += 1
        self.given = 0

    def read(self, timeout):
        if self.given >= 5:
            time.sleep(timeout)
            return None
        self.given += 1
        return super().read(timeout)


def test_watchdog_notices_a_stall_and_reopens(tmp_path):
    cfg = load_config(write_config(tmp_path / "s.toml", 'kind = "simulated"\nstall_timeout_s = 0.5'))
    source = _StallingSource()
    runner = LineRunner(cfg, source=source)
    runner.start()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and runner.source.opens < 3:
        time.sleep(0.05)
    runner.stop()
    st = runner.status()["source"]
    assert runner.source.opens >= 3 and st["stalls"] >= 2 and st["reopens"] >= 2


def test_opencv_video_file_source(tmp_path, samples):
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 256))
    for name in ("000.png", "001.png", "002.png"):
        writer.write(cv2.imread(str(samples / "flange" / "test" / "good" / name)))
    writer.release()
    src = OpenCVSource(str(video), live=False)
    src.open()
    frames = []
    try:
        while True:
            frames.append(src.read(1.0))
    except SourceFinished as exc:
        assert type(exc).__name__ == "SourceFinished"
    assert len(frames) == 3 and frames[0].image.shape == (256, 256, 3)
    with pytest.raises(SourceError, match="no such video file"):
        OpenCVSource(str(tmp_path / "nope.avi"), live=False).open()


def test_image_disk_full_does_not_stop_inspection(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the image folder should be")
    cfg = load_config(write_config(tmp_path / "s.toml", 'kind = "simulated"\nrate = 30\ndefect_rate = 1.0'))
    cfg.images.dir = blocker / "images"
    runner = LineRunner(cfg)
    runner.start()
    deadline = time.monotonic() + 60  # ends as soon as 10 are in; a loaded CI box may take a while to start
    while runner.counters.rejected_parts < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    runner.stop()
    st = runner.status()
    assert st["results"]["FAIL"] >= 10  # inspection went on; results committed without their images
    box = Outbox(cfg.outbox)
    assert box.pending("http", 1000) == []  # no destination configured
    box.close()


def test_outbox_survives_reopen_and_sets_poison_aside(tmp_path):
    box = Outbox(tmp_path / "o.db")
    for i in range(5):
        box.add(f"id{i}", f'{{"n": {i}}}')
    box.add("id0", "duplicate ignored")
    box.close()
    box = Outbox(tmp_path / "o.db")
    assert [e.inspection_id for e in box.pending("http", 10)] == [f"id{i}" for i in range(5)]
    box.mark("http", ["id0", "id1"])
    box.mark("http", ["id2"], REJECTED, "422: bad")
    box.mark("mqtt", ["id0", "id1", "id2", "id3"])
    assert box.prune() == 2  # id0, id1 delivered everywhere; id2 kept (rejected, for a person to look at)
    stats = box.stats()
    assert asdict(stats["http"]) == {"depth": 2, "oldest_age_s": stats["http"].oldest_age_s, "rejected": 1}
    assert stats["mqtt"].depth == 1  # id4
    box.close()


def test_local_image_retention_by_age_and_bytes(tmp_path):
    import os

    from inspection.line.local_images import LocalImages

    store = LocalImages(tmp_path / "img", max_age_days=1, max_bytes=10_000)
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    paths = [store.save(f"id{i}", img, img) for i in range(4)]
    files = [p for pair in paths for p in pair]
    now = time.time()
    for i, f in enumerate(files):  # id0 oldest ... id3 newest; id0 is also past the age limit
        os.utime(f, (now - 3600 * (8 - i) - (2 * 86400 if i < 2 else 0),) * 2)
    removed = store.sweep(every_s=0)
    sizes = sum(os.path.getsize(f) for f in files if os.path.exists(f))
    assert removed >= 2 and not any(os.path.exists(f) for f in files[:2])  # too old
    assert sizes <= 10_000 and os.path.exists(files[-1])  # then oldest first until under the byte limit


def test_command_line_options_win_over_the_station_file(tmp_path, service_process):
    import os
    import subprocess

    from line_support import CLI

    service = service_process
    cfg = write_config(tmp_path / "s.toml", 'kind = "simulated"\nrate = 5', service_url="http://127.0.0.1:9")
    flag_outbox = tmp_path / "flag" / "outbox.db"
    env = {**os.environ, "INSPECTION_SERVICE_TOKEN": service.edge}
    res = subprocess.run([*CLI, "run", "--config", str(cfg), "--service-url", service.url, "--rate", "37",
                          "--outbox", str(flag_outbox), "--duration", "3", "--flush-timeout", "20"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "simulated flange line at 37/s" in res.stdout  # --rate, not the file's 5
    assert flag_outbox.is_file() and not (tmp_path / "outbox.db").exists()  # --outbox, not the file's
    summary = next(line for line in res.stdout.splitlines() if " PASS, " in line).split()
    committed = int(summary[0]) + int(summary[2])  # "N PASS, M FAIL, ..."
    assert "undelivered: http 0" in res.stdout
    assert len(service.ids()) == committed > 0  # delivered to --service-url, not the file's port 9


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_pass_images_are_sampled_by_keep_pass_fraction(tmp_path, samples, fraction):
    folder = tmp_path / "in"
    shutil.copytree(samples / "flange" / "test" / "good", folder)
    cfg = load_config(write_config(tmp_path / "s.toml", f'kind = "folder"\npath = "{folder}"'))
    cfg.images.keep_pass_fraction = fraction
    cfg.images.keep_near_threshold = 0.0  # only the sampling decides for PASS parts here
    runner = LineRunner(cfg)
    runner.start()
    runner.wait()
    runner.stop()
    results = runner.status()["results"]
    originals = list((tmp_path / "images").rglob("*-original.png"))
    overlays = list((tmp_path / "images").rglob("*-overlay.jpg"))
    assert results["PASS"] >= 6  # enough PASS parts for the sampling to show
    expected = results["FAIL"] + (results["PASS"] if fraction == 1.0 else 0)  # every FAIL is always kept
    assert len(originals) == len(overlays) == expected
