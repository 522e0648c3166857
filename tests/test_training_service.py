"""Training jobs on the results service (issue 10 item 6): a real worker process trains on 20 generated good
images (preset fast) with labelled defects, the report carries the calibration and the evaluation, publish
adds a model version; every bad upload is refused with 422 naming the member and leaves nothing behind;
one job at a time (409); cancel kills the worker; a killed service's running job is marked interrupted at
the next start and its orphaned worker killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import training_support as ts
from fastapi.testclient import TestClient
from line_support import ServiceProcess
from service_support import STATION, make_result, png_bytes

from edge_service import auth, store, training_worker
from edge_service.app import ServiceSettings, create_app
from edge_service.settings import TrainingSettings
from edge_service.training_models import TrainingJob
from inspection.cli.progress_json import JsonLinesProgress, progress_line
from inspection.schema import StationContext

JOBS = "/api/v1/training/jobs"


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> Path:
    return ts.small_line(tmp_path_factory.mktemp("line"))


class Client:
    def __init__(self, client: TestClient, engine, root: Path):
        self.client, self.engine, self.root = client, engine, root
        self.tokens = {r: auth.create_token(engine, f"t-{r}", r).token for r in auth.ROLES}

    def h(self, role: str = "qa") -> dict:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: str = "qa"):
        return self.client.get(path, headers=self.h(role))

    def start(self, good: bytes | None = None, defects: bytes | None = None, role: str = "qa", **fields):
        files = {k: (f"{k}.zip", v, "application/zip") for k, v in (("good", good), ("defects", defects)) if v}
        return self.client.post(JOBS, data=ts.form(**fields), files=files or None, headers=self.h(role))

    def job_dirs(self) -> list[str]:
        return sorted(p.name for p in (self.root / "inspection-training").iterdir()) if (
            self.root / "inspection-training").exists() else []


@pytest.fixture
def api(tmp_path):
    limits = TrainingSettings(max_members=60, max_unpacked_bytes=8 * 1024**2, threads=1)
    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img",
                                     training=limits))
    with TestClient(app) as client:
        store.add_station(app.state.engine, StationContext.from_path(STATION))
        yield Client(client, app.state.engine, tmp_path)


def test_train_with_defects_report_and_publish(api, line):
    good = {**ts.good_members(line, folder="./good/"), ".DS_Store": b"x", "__MACOSX/._000.png": b"x"}  # skipped
    res = api.start(ts.zip_bytes(good), ts.zip_bytes(ts.defect_members(line)), version="7")
    assert res.status_code == 201, res.text
    job = res.json()
    assert (job["state"], job["good_images"], job["held_out_images"], job["defect_images"], job["masks"]) == (
        "running", 17, 3, 8, 8)
    done = ts.wait_for(api.get, job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"] == 1.0 and any(0 < p < 1 for _, p, _ in done["seen"])  # progress was reported
    report = done["report"]
    assert report["good_count"] == 3 and report["defect_count"] == 8 and report["policy"] == "frr"
    assert report["good_scores"]["count"] == 3 and report["threshold"] == report["good_scores"]["max"]
    ev = report["evaluation"]
    assert ev["good_images"] == 3 and ev["defect_images"] == 8 and 0.5 < ev["image_auroc"] <= 1
    assert 0.5 < ev["pixel_auroc"] <= 1 and {k["kind"] for k in ev["per_kind"]} == {"crack", "missing", "scratch",
                                                                                      "spot"}
    assert any("wrote" in line_ for line_ in done["log_tail"])
    assert api.client.post(f"{JOBS}/{job['id']}/publish", json={}, headers=api.h("operator")).status_code == 403
    pub = api.client.post(f"{JOBS}/{job['id']}/publish", json={"note": "first try"}, headers=api.h())
    assert pub.status_code == 200, pub.text
    assert pub.json()["published"]["name"] == "flange" and pub.json()["published"]["version"] == "7"
    models = api.get("/api/v1/models").json()
    assert [(m["name"], m["version"], m["sha256"]) for m in models] == [("flange", "7", pub.json()["published"][
        "sha256"])]
    assert models[0]["card"]["threshold"] == pytest.approx(report["threshold"])
    audit = api.get("/api/v1/audit", role="admin").json()
    assert {"training_publish", "model_upload"} <= {e["action"] for e in audit}
    again = api.client.post(f"{JOBS}/{job['id']}/publish", json={}, headers=api.h())  # same bytes: the same version
    assert again.status_code == 200 and again.json()["published"]["sha256"] == pub.json()["published"]["sha256"]
    assert len(api.get("/api/v1/models").json()) == 1
    assert api.get(JOBS, role="operator").json()[0]["id"] == job["id"]


def _traversal(line):
    return ts.zip_bytes({**ts.good_members(line), "../evil.png": ts.png()})


BAD_GOOD = {
    "path traversal": (_traversal, "'../evil.png'", "'..'"),
    "absolute path": (lambda line: ts.zip_bytes({**ts.good_members(line), "/etc/evil.png": ts.png()}),
                      "'/etc/evil.png'", "absolute"),
    "symlink": (lambda line: ts.with_symlink(ts.good_members(line), "good/link.png", "/etc/passwd"),
                "'good/link.png'", "symbolic link"),
    "not an image by name": (lambda line: ts.zip_bytes({**ts.good_members(line), "good/notes.txt": b"hi"}),
                             "'good/notes.txt'", "not an image"),
    "corrupt image": (lambda line: ts.zip_bytes({**ts.good_members(line), "good/broken.png": b"\x89PNG" + b"x" * 99}),
                      "'good/broken.png'", "not a decodable image"),
    "other size": (lambda line: ts.zip_bytes({**ts.good_members(line), "good/small.png": ts.png(128, 96)}),
                   "'good/small.png'", "128x96"),
    "other channels": (lambda line: ts.zip_bytes({**ts.good_members(line), "good/grey.png": ts.png(channels=1)}),
                       "'good/grey.png'", "1 channel(s)"),
    "too few": (lambda line: ts.zip_bytes(ts.good_members(line, 9)), "9 good image(s)", "at least 10"),
    "too many members": (lambda line: ts.zip_bytes({**ts.good_members(line),
                                                    **{f"x/{i}.png": b"" for i in range(41)}}), "61 members",
                         "limit is 60"),
    "bomb": (lambda line: ts.zip_bytes({**ts.good_members(line), "good/zeros.png": bytes(9 * 1024**2)}),
             "unpacks to", "limit is 8388608"),
    "not a zip": (lambda line: b"PK\x03\x04 not really", "good images: not a zip file", "zip"),
}


@pytest.mark.parametrize("case", list(BAD_GOOD))
def test_bad_good_zip_is_refused_naming_the_member_and_nothing_is_kept(api, line, case):
    make, names, why = BAD_GOOD[case]
    res = api.start(make(line))
    assert res.status_code == 422, res.text
    message = res.json()["message"]
    assert names in message and why in message, message
    assert api.job_dirs() == [] and api.get(JOBS).json() == []  # staging removed, no job


BAD_DEFECTS = {
    "mask without image": ({"ground_truth/crack/000_mask.png": ts.png(channels=1)}, "mask without a defect image"),
    "outside the layout": ({"test/crack/000.png": ts.png()}, "not in the defects layout"),
    "kind named good": ({"defect/good/000.png": ts.png()}, "'good'"),
    "mask of another size": ({"defect/crack/000.png": ts.png(seed=1), "ground_truth/crack/000_mask.png":
                              ts.png(64, 64, 1)}, "64x64 pixels; its image is 256x256"),
    "defect of another size": ({"defect/crack/000.png": ts.png(300, 300)}, "300x300"),
}


@pytest.mark.parametrize("case", list(BAD_DEFECTS))
def test_bad_defects_zip_is_refused_and_nothing_is_kept(api, line, case):
    members, why = BAD_DEFECTS[case]
    res = api.start(ts.zip_bytes(ts.good_members(line)), ts.zip_bytes(members))
    assert res.status_code == 422 and why in res.json()["message"], res.text
    assert api.job_dirs() == []


def test_bad_fields_and_roles(api, line):
    good = ts.zip_bytes(ts.good_members(line))
    res = api.start(good, preset="turbo")
    assert res.status_code == 422 and "preset" in res.json()["message"] and "fast" in res.json()["message"]
    for frr in ("0", "0.7", "nan", "abc"):
        res = api.start(good, target_frr=frr)
        assert res.status_code == 422 and "target_frr" in res.json()["message"], frr
    res = api.start(good, name="../x")
    assert res.status_code == 422 and "name" in res.json()["message"]
    res = api.start(None)
    assert res.status_code == 422 and "no good images" in res.json()["message"]
    assert api.start(good, role="operator").status_code == 403
    assert api.client.post(JOBS, data=ts.form()).status_code == 401
    assert api.get(f"{JOBS}/0123abcd").status_code == 404 and api.get(f"{JOBS}/../etc").status_code == 404
    assert api.job_dirs() == []


def test_good_results_originals(api, line):
    goods = sorted((line / "train" / "good").glob("*.png"))[:12]
    rows = [make_result(verdict="PASS", score=0.2) for _ in goods]
    fail = make_result(verdict="FAIL", score=0.9)
    ingest = api.client.post("/api/v1/results", json={"results": [*rows, fail]}, headers=api.h("edge"))
    assert ingest.status_code == 200, ingest.text
    for row, path in zip(rows, goods, strict=True):
        put = api.client.put(f"/api/v1/results/{row['inspection_id']}/images/original", content=path.read_bytes(),
                             headers={**api.h("edge"), "Content-Type": "image/png"})
        assert put.status_code == 204, put.text
    ids = [r["inspection_id"] for r in rows]
    unknown = str(uuid.uuid4())
    for given, why in (([*ids, unknown], f"no result {unknown}"), ([*ids, fail["inspection_id"]], "not good parts"),
                       (["nope"], "'nope' is not a result id")):
        res = api.start(None, result_ids=",".join(given))
        assert res.status_code == 422 and why in res.json()["message"], res.text
    extra = make_result(verdict="PASS", score=0.1)
    api.client.post("/api/v1/results", json={"results": [extra]}, headers=api.h("edge"))
    res = api.start(None, result_ids=",".join([*ids, extra["inspection_id"]]))
    assert res.status_code == 422 and "no stored original" in res.json()["message"]
    api.client.put(f"/api/v1/results/{extra['inspection_id']}/images/original", content=png_bytes(3, 128),
                   headers={**api.h("edge"), "Content-Type": "image/png"})
    res = api.start(None, result_ids=",".join([*ids, extra["inspection_id"]]))
    assert res.status_code == 422 and "128x128" in res.json()["message"]  # not the size of the others
    assert api.job_dirs() == []
    res = api.start(None, result_ids="\n".join(ids))
    assert res.status_code == 201, res.text
    assert res.json()["sources"] == ["results"] and res.json()["good_images"] + res.json()["held_out_images"] == 12
    assert ts.wait_for(api.get, res.json()["id"])["state"] == "succeeded"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _worker_pid(job_dir: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return int((job_dir / "worker.pid").read_text())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError("no worker started")


def test_one_job_at_a_time_and_cancel_kills_the_worker(api, line):
    good = ts.zip_bytes(ts.good_members(line))
    first = api.start(good, preset="accurate")
    assert first.status_code == 201, first.text
    job_id = first.json()["id"]
    pid = _worker_pid(api.root / "inspection-training" / job_id)
    busy = api.start(good)
    assert busy.status_code == 409 and job_id in busy.json()["message"]
    assert api.client.delete(f"{JOBS}/{job_id}", headers=api.h("operator")).status_code == 403
    res = api.client.delete(f"{JOBS}/{job_id}", headers=api.h())
    assert res.status_code == 200, res.text
    assert res.json()["state"] == "cancelled" and "cancelled by t-qa" in res.json()["error"]
    assert not _alive(pid)
    assert api.client.delete(f"{JOBS}/{job_id}", headers=api.h()).status_code == 409
    assert api.client.post(f"{JOBS}/{job_id}/publish", json={}, headers=api.h()).status_code == 409
    assert api.start(good).status_code == 201  # the slot is free again


def test_a_killed_service_leaves_no_job_running(tmp_path, line):
    service = ServiceProcess(tmp_path)
    qa = service._token("qa")
    service.start()
    try:
        res = httpx.post(f"{service.url}{JOBS}", data=ts.form(preset="accurate"),
                         files={"good": ("g.zip", ts.zip_bytes(ts.good_members(line)), "application/zip")},
                         headers={"Authorization": f"Bearer {qa}"}, timeout=60)
        assert res.status_code == 201, res.text
        job_id = res.json()["id"]
        pid = _worker_pid(tmp_path / "inspection-training" / job_id)
        assert service.proc is not None
        service.proc.send_signal(signal.SIGKILL)  # no shutdown: the worker is orphaned
        service.proc.wait(timeout=10)
        service.proc = None
        service.start()
        job = httpx.get(f"{service.url}{JOBS}/{job_id}", headers={"Authorization": f"Bearer {qa}"}).json()
        assert job["state"] == "failed" and "interrupted" in job["error"], job
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
    finally:
        service.stop()
        if "pid" in locals() and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_restart_marks_a_running_job_interrupted_and_kills_its_leftover_worker(tmp_path):
    job_dir = tmp_path / "inspection-training" / "00aa11bb22cc33dd"
    job_dir.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(job_dir / "good")],
                               start_new_session=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        (job_dir / "worker.pid").write_text(str(sleeper.pid))
        job = TrainingJob(id=job_dir.name, state="running", name="m", version="1", preset="fast", target_frr=0.01,
                          created_by="anna", created_at=datetime.now(UTC), good_images=8, held_out_images=2,
                          sources=["zip"])
        (job_dir / "job.json").write_text(job.model_dump_json())
        other = job_dir.with_name("00aa11bb22cc33ee")  # its pid file names a process that is not its worker
        other.mkdir()
        (other / "job.json").write_text(job.model_copy(update={"id": other.name}).model_dump_json())
        (other / "worker.pid").write_text(str(stranger.pid))
        (tmp_path / "inspection-training" / ".staging-leftover").mkdir()
        app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img"))
        with TestClient(app) as client:
            token = auth.create_token(app.state.engine, "anna", "qa").token
            got = client.get(f"{JOBS}/{job_dir.name}", headers={"Authorization": f"Bearer {token}"}).json()
            listed = client.get(JOBS, headers={"Authorization": f"Bearer {token}"}).json()
        assert got["state"] == "failed" and "interrupted" in got["error"] and got["finished_at"]
        assert [j["state"] for j in listed] == ["failed", "failed"]
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
        assert stranger.poll() is None  # a process that is not this job's worker is left alone
        assert not (tmp_path / "inspection-training" / ".staging-leftover").exists()
    finally:
        for p in (sleeper, stranger):
            p.kill()
            p.wait()


def test_upload_over_the_training_body_limit_is_413(tmp_path, line):
    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img",
                                     training=TrainingSettings(max_upload_bytes=200_000)))
    with TestClient(app) as client:
        api = Client(client, app.state.engine, tmp_path)
        res = api.start(ts.zip_bytes(ts.good_members(line)))
        assert res.status_code == 413 and "200000" in res.json()["message"]
        assert api.job_dirs() == []


def test_progress_json_lines_of_the_trainer(capsys):
    for _ in JsonLinesProgress(range(4), desc="features", mininterval=0):
        pass
    lines = [json.loads(x)["progress"] for x in capsys.readouterr().err.splitlines()]
    assert lines[0] == {"stage": "features", "done": 0, "total": 4, "fraction": 0.0}
    assert lines[-1] == {"stage": "features", "done": 4, "total": 4, "fraction": 1.0}
    assert training_worker.progress_of(progress_line("features", 2, 4)) == ("features", 0.25 + 0.4 * 0.5)
    assert training_worker.progress_of(progress_line("coreset", 9, 9))[0] == training_worker.FITTING
    assert training_worker.progress_of("wrote model.onnx") is None


def test_an_installation_without_the_trainer_refuses_with_503(api, line, monkeypatch):
    assert training_worker.runtime_missing() is None  # this one has it
    monkeypatch.setattr(training_worker, "runtime_missing", lambda: "onnxruntime, onnx")  # a service-only install
    res = api.start(ts.zip_bytes(ts.good_members(line)))
    assert res.status_code == 503 and "onnxruntime, onnx not installed" in res.json()["message"]
    assert api.job_dirs() == []
