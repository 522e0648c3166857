"""The line runner's images reach the results service: the colour-mapped heatmap as its own image kind beside
the original and overlay, every FAIL and every result near the threshold keeps its images, other PASS parts
only by the sampling rate. A simulated line delivers to a real `inspection serve` process."""

from __future__ import annotations

import os
import subprocess

import cv2
import httpx
import numpy as np
from line_support import CLI, write_config

from inspection.line.local_images import heatmap_path, keeps_images
from inspection.model.runtime import InspectionModel
from inspection.model.shipped import default_model_path
from inspection.sources.simulated import line_parts


def _band_splitting_the_good_parts() -> float:
    """A keep_near_threshold band with half the simulated line's good parts inside it and half outside: halfway
    between the two middle relative distances |score - threshold| / threshold of its 30 good parts (seed 0,
    the default pool) under the shipped model the run uses, so no part lies on the band's edge. Measured, not
    written down: the figures move whenever the shipped model is retrained (good flanges score 0.42-0.91 of
    the threshold of the model calibrated on 400 images, 0.85-0.97 of the one before)."""
    model = InspectionModel.load(default_model_path(), threads=1)
    good = model.run(np.stack(line_parts("flange", 0, 30, defective=False)))[1]
    d = np.sort(np.abs(good.astype(np.float64) - model.threshold) / model.threshold)
    return float((d[14] + d[15]) / 2)


def test_which_results_keep_their_images():
    assert keeps_images("FAIL", 0.9, 0.5, 0.0, 0.99, 0.0)
    assert keeps_images("PASS", 0.45, 0.5, 0.1, 0.99, 0.0)  # within 10 % of the threshold
    assert not keeps_images("PASS", 0.44, 0.5, 0.1, 0.99, 0.0)  # 12 % below: not near
    assert not keeps_images("PASS", 0.45, 0.5, 0.0, 0.99, 0.0)  # band off
    assert keeps_images("PASS", 0.1, 0.5, 0.1, 0.01, 0.02)  # sampled
    assert not keeps_images("PASS", 0.1, 0.5, 0.1, 0.03, 0.02)
    assert heatmap_path("/x/20260101/abc-original.png").name == "abc-heatmap.png"


def _run_line(tmp_path, service, band: float) -> None:
    cfg = write_config(tmp_path / "s.toml", 'kind = "simulated"\nrate = 20\ndefect_rate = 0.3',
                       service_url=service.url)
    # the keys go into the file's own [images] table (a second table would be refused)
    cfg.write_text(cfg.read_text().replace("[images]\n", f"[images]\nkeep_pass_fraction = 0.0\n"
                                           f"keep_near_threshold = {band}\n", 1))
    env = {**os.environ, "INSPECTION_SERVICE_TOKEN": service.edge}
    res = subprocess.run([*CLI, "run", "--config", str(cfg), "--duration", "12", "--flush-timeout", "30"],
                         env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "undelivered: http 0" in res.stdout, res.stdout


def _stored(service) -> list[dict]:
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {service.reader}"}) as c:
        return [c.get(f"/api/v1/results/{rid}").json() for rid in service.ids()]


def test_simulated_line_uploads_heatmaps_and_keeps_near_threshold_passes(tmp_path, service_process):
    service = service_process
    band = _band_splitting_the_good_parts()
    _run_line(tmp_path, service, band)
    stored = _stored(service)
    near = [r for r in stored if r["verdict"] == "PASS" and abs(r["score"] - r["threshold"]) <= band * r["threshold"]]
    far = [r for r in stored if r["verdict"] == "PASS" and r not in near]
    fails = [r for r in stored if r["verdict"] == "FAIL"]
    print(f"{len(stored)} results: {len(fails)} FAIL, {len(near)} PASS near the threshold, {len(far)} PASS far")
    assert fails and near and far, "the run needs FAILs and PASS parts both near and far from the threshold"
    for r in fails + near:  # kept: all three kinds arrived
        assert r["images"] == ["heatmap", "original", "overlay"], (r["verdict"], r["score"], r["threshold"])
    for r in far:  # PASS sampling is 0: nothing kept
        assert r["images"] == [], (r["score"], r["threshold"])
    rid = fails[0]["inspection_id"]
    got = httpx.get(f"{service.url}/api/v1/results/{rid}/images/heatmap",
                    headers={"Authorization": f"Bearer {service.reader}"})
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    heat = cv2.imdecode(np.frombuffer(got.content, np.uint8), cv2.IMREAD_COLOR)
    assert heat.shape[:2] == (fails[0]["image_height"], fails[0]["image_width"])
    assert len(np.unique(heat.reshape(-1, 3), axis=0)) > 50  # a colour map, not a flat picture
    original = httpx.get(f"{service.url}/api/v1/results/{rid}/images/original",
                         headers={"Authorization": f"Bearer {service.reader}"}).content
    assert original != got.content
