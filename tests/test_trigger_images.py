"""A triggered station's images are written after Result Ready: the record is committed naming its files, the
result is presented, then the image writer writes them; the HTTP forwarder waits for images still being
written instead of skipping them as missing; a failed write is counted and never blocks anything."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from trigger_support import TriggeredRunner, trigger_config

from inspection.line import metrics as m
from inspection.line.forwarders import HttpForwarder
from inspection.line.image_writer import ImageJob, ImageWriter, PendingImages
from inspection.line.local_images import LocalImages
from inspection.line.outbox import Entry
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path
from inspection.plant.records import StationState


def _rows(outbox: Path) -> list[tuple[str, str | None, str | None]]:
    db = sqlite3.connect(outbox)
    try:
        return list(db.execute("SELECT inspection_id, original_path, overlay_path FROM outbox ORDER BY seq"))
    finally:
        db.close()


def test_result_ready_does_not_wait_for_the_images(tmp_path, monkeypatch):
    """The image writer is held: the FAIL is committed (naming its files) and presented all the same; its
    files appear once the writer may go on, and the runner's stop waits for them."""
    gate, holding = threading.Event(), threading.Event()
    write = LocalImages.write

    def held_write(self, *args, **kwargs):
        holding.set()
        assert gate.wait(30), "gate never opened"
        return write(self, *args, **kwargs)

    monkeypatch.setattr(LocalImages, "write", held_write)
    cfg = trigger_config(tmp_path, source={"kind": "simulated", "rate": 100, "defect_rate": 1.0})
    cfg.images.keep_pass_fraction = 1.0  # whatever the verdict, this part keeps its images
    try:
        with TriggeredRunner(cfg) as runner:
            core = runner.trigger_mode.plant.core
            answer = core.trigger("IMG-1")
            assert answer.accepted
            for _ in range(200):
                snap = core.snapshot()
                if snap.presented is not None:
                    break
                core.wait_for_change(snap.version, 0.1)
            assert snap.presented is not None and snap.presented.sequence == answer.sequence
            assert snap.state != StationState.ERROR
            assert holding.wait(10), "the image writer never started on the part"
            [(rid, original, overlay)] = _rows(cfg.outbox)
            assert original and overlay, "the committed record names the files it will have"
            assert runner.pending_images.pending(rid), "Result Ready came while its images were still pending"
            assert not Path(original).exists() and not Path(overlay).exists()
            gate.set()
    finally:
        gate.set()
    heatmap = Path(original).with_name(f"{rid}-heatmap.png")
    assert Path(original).is_file() and Path(overlay).is_file() and heatmap.is_file()
    assert not runner.pending_images.pending(rid)


def _job(images: LocalImages, rid: str) -> ImageJob:
    model = InspectionModel.load(default_model_path())
    image = np.full((*model.input_size, 3), 120, np.uint8)
    return ImageJob(rid, images.paths(rid), image, model.inspect(image), model.meta.good_scores.p50)


def test_a_failed_image_write_is_counted_and_clears_the_pending_id(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the images folder should be")
    pending = PendingImages()
    writer = ImageWriter(LocalImages(blocker / "images", 1, 10**9), pending)
    before = m.IMAGE_ERRORS._value.get()
    job = _job(writer.images, "broken")
    writer.submit(job)
    assert pending.wait("broken", 20)
    writer.close()
    assert writer.failed == 1 and writer.written == 0
    assert m.IMAGE_ERRORS._value.get() == before + 1
    assert not job.paths.original.exists()


class _ImageSink:
    """A stand-in results service: acknowledges every POSTed result, records every image PUT."""

    def __init__(self) -> None:
        self.puts: list[tuple[str, int]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body = json.dumps({"stored": [r["inspection_id"] for r in sent["results"]], "duplicates": []})
                self._answer(200, body.encode())

            def do_PUT(self):
                data = self.rfile.read(int(self.headers["Content-Length"]))
                sink.puts.append((self.path.rsplit("/", 1)[-1], len(data)))
                self._answer(204, b"")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("pending_known", [True, False], ids=["waits-for-pending", "without-registry-skips"])
def test_the_http_forwarder_waits_for_images_still_being_written(tmp_path, pending_known):
    """Images written 0.5 s after the commit are uploaded when the forwarder knows they are pending; without
    the registry (as a missing file after a crash) the same entry goes without them."""
    images, pending = LocalImages(tmp_path / "images", 1, 10**9), PendingImages()
    job = _job(images, "late-images")
    sink = _ImageSink()
    forwarder = HttpForwarder(tmp_path / "o.db", sink.url, "token", threading.Event(),
                              pending_images=pending if pending_known else None)
    writer = ImageWriter(images, pending)
    release = threading.Timer(0.5, writer.submit, args=(job,))
    pending.add(job.inspection_id)  # committed: pending from now on, written half a second later
    try:
        release.start()
        forwarder._upload_images(Entry(1, job.inspection_id, "{}", str(job.paths.original), str(job.paths.overlay),
                                       0.0))
    finally:
        release.join()
        writer.close()
        forwarder.client.close()
        sink.close()
    kinds = sorted(kind for kind, size in sink.puts if size > 0)
    assert kinds == (["heatmap", "original", "overlay"] if pending_known else [])
