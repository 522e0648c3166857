"""Models on the results service (issue 10 item 5, service side), on SQLite and PostgreSQL: upload checked to
be one of ours (not ONNX, truncated, foreign, wrong input shape, empty and too large refused, nothing
stored), idempotent re-upload, conflict, list/get/download with roles; assigning a model (threshold,
shadow), rollback, bad input with nothing half-applied, and the audit trail."""

from __future__ import annotations

import hashlib
import json

import models_support as ms
import pytest
from service_support import OTHER, STATION, make_result

from edge_service import model_store
from edge_service.database import upgrade

UPLOAD = "/api/v1/models"
OCTET = {"Content-Type": "application/octet-stream"}


def _upload(service, data: bytes, role: str = "qa", note: str | None = None):
    params = {"note": note} if note else {}
    return service.client.post(UPLOAD, content=data, params=params, headers={**service.h(role), **OCTET})


def _files(service) -> list[str]:
    folder = service.client.app.state.settings.models_path
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _audit(service, action: str | None = None) -> list[dict]:
    entries = service.get("/api/v1/audit", role="admin").json()
    return [e for e in entries if action is None or e["action"] == action]


@pytest.mark.parametrize("bad, why", [
    (b"", "empty"), (b"hello, not a model", "not an ONNX model"), ("truncated", "not an ONNX model"),
    ("foreign", "not one of ours"), ("wrong_input_shape", "input 'image' has shape"),
])
def test_bad_files_are_refused_naming_the_problem_and_nothing_is_stored(service, bad, why):
    data = getattr(ms, bad)() if isinstance(bad, str) else bad
    res = _upload(service, data)
    assert res.status_code == 422, res.text
    body = res.json()
    assert body["error"] == "model_rejected" and why in body["message"] and "nothing stored" in body["message"]
    if bad == "foreign":
        assert "inspection.model_version" in body["message"]
    assert service.get(UPLOAD).json() == [] and _files(service) == [] and _audit(service) == []


def test_upload_list_get_download_and_roles(service):
    data = ms.ours()
    sha = hashlib.sha256(data).hexdigest()
    assert _upload(service, data, role="operator").status_code == 403
    assert _upload(service, data, role="edge").status_code == 403
    res = _upload(service, data, note="first demo")
    assert res.status_code == 201, res.text
    got = res.json()
    assert (got["name"], got["version"], got["sha256"], got["size_bytes"]) == ("demo_flange", "1", sha, len(data))
    assert got["uploaded_by"] == "test-qa" and got["note"] == "first demo"
    assert got["card"] == ms.card_of(data) and got["card"]["threshold"] > 0
    calibrated_on = json.loads(ms.FLANGE.with_name("demo_flange.calibration.json").read_text())["good_count"]
    assert got["card"]["good_scores"]["count"] == calibrated_on and got["card"]["calibration"]["policy"] == "frr"
    assert got["download_url"] == "/api/v1/models/demo_flange/1/file"
    assert _files(service) == [f"{sha}.onnx"]
    again = _upload(service, data)  # the same bytes: the stored version, no second row or audit entry
    assert again.status_code == 200 and again.json()["uploaded_at"] == got["uploaded_at"]
    assert _upload(service, ms.variant("2"), role="admin").status_code == 201
    listed = service.get(UPLOAD, role="edge").json()  # any authenticated role
    assert [(m["name"], m["version"]) for m in listed] == [("demo_flange", "2"), ("demo_flange", "1")]
    assert service.get("/api/v1/models/demo_flange/1").json() == got
    assert service.get("/api/v1/models/demo_flange/9").status_code == 404
    for role in ("edge", "qa", "admin"):
        file = service.get(got["download_url"], role=role)
        assert file.status_code == 200 and file.content == data and file.headers["x-content-sha256"] == sha
        assert file.headers["content-type"] == "application/octet-stream"
    assert service.get(got["download_url"], role="operator").status_code == 403
    assert service.client.get(UPLOAD).status_code == 401
    uploads = _audit(service, "model_upload")
    assert [(e["actor"], e["target"], e["reason"]) for e in uploads] == [
        ("test-admin", "demo_flange/2", None), ("test-qa", "demo_flange/1", "first demo")]


def test_same_name_and_version_with_other_bytes_is_a_conflict(service):
    assert _upload(service, ms.ours()).status_code == 201
    res = _upload(service, ms.variant("1", threshold=0.9))
    assert res.status_code == 409 and res.json()["error"] == "conflict"
    assert "demo_flange version 1 is already stored with other bytes" in res.json()["message"]
    assert len(service.get(UPLOAD).json()) == 1 and len(_files(service)) == 1
    assert len(_audit(service, "model_upload")) == 1


def test_python_api_for_training(service):
    app = service.client.app
    with pytest.raises(ValueError, match="not one of ours"):
        model_store.add_model(service.engine, app.state.settings, ms.foreign(), "trainer")
    first = model_store.add_model(service.engine, app.state.settings, ms.ours(), "trainer", note="published")
    assert first.uploaded_by == "trainer" and first.note == "published"
    assert model_store.add_model(service.engine, app.state.settings, ms.ours(), "someone else") == first
    with pytest.raises(model_store.ModelConflict):
        model_store.add_model(service.engine, app.state.settings, ms.variant("1", threshold=0.9), "trainer")
    assert model_store.model_file(app.state.settings, first.sha256).read_bytes() == ms.ours()


def _assign(service, body: dict, station: str = STATION, role: str = "qa"):
    return service.client.put(f"/api/v1/stations/{station}/assignment", json=body, headers=service.h(role))


def _rollback(service, reason: str = "back", station: str = STATION, role: str = "qa"):
    return service.client.post(f"/api/v1/stations/{station}/assignment/rollback", json={"reason": reason},
                               headers=service.h(role))


def _polled(service, role: str = "edge_line1") -> dict:
    res = service.get(f"/api/v1/stations/{STATION}/assignment", role=role)
    assert res.status_code == 200, res.text
    return res.json()


V1 = {"model_name": "demo_flange", "model_version": "1", "reason": "first model"}


@pytest.mark.parametrize("change, status, why", [
    ({"threshold": -0.5}, 422, "threshold"), ({"threshold": 0}, 422, "threshold"),
    ({"threshold": "nan"}, 422, "finite"), ({"threshold": "inf"}, 422, "finite"), ({"reason": ""}, 422, "reason"),
    ({"model_version": "7"}, 404, "no model 'demo_flange' version '7'"),
    ({"model_name": "no_such"}, 404, "no model 'no_such'"), ({"model_name": "a/b"}, 422, "model_name"),
    ({"shadow": {"model_name": "demo_flange", "model_version": "1"}}, 422, "the live model itself"),
    ({"shadow": {"model_name": "demo_flange", "model_version": "5"}}, 404, "shadow"),
])
def test_bad_assignments_change_nothing(service, change, status, why):
    assert _upload(service, ms.ours()).status_code == 201
    assert service.post([make_result(model_version="1")]).status_code == 200
    before = _polled(service)
    res = _assign(service, {**V1, **change})
    assert res.status_code == status and why in res.json()["message"], res.text
    assert _polled(service) == before and _audit(service, "model_assign") == []


def test_unknown_station_and_roles(service):
    assert _upload(service, ms.ours()).status_code == 201
    res = _assign(service, V1, station="plant9/a/b/c/d")
    assert res.status_code == 404 and "plant9/a/b/c/d" in res.json()["message"]
    assert _rollback(service, station="plant9/a/b/c/d").status_code == 404
    for role in ("operator", "edge"):
        assert _assign(service, V1, role=role).status_code == 403
        assert _rollback(service, role=role).status_code == 403
    assert _rollback(service).status_code == 409  # nothing assigned yet
    assert _audit(service) == _audit(service, "model_upload")


def test_assign_shadow_threshold_and_roll_back(service):
    v1, v2 = _upload(service, ms.ours()).json(), _upload(service, ms.variant("2")).json()
    assert service.post([make_result(model_version="1")]).status_code == 200
    assert _polled(service)["model"] is None
    res = _assign(service, V1)
    assert res.status_code == 200, res.text
    polled = _polled(service)
    assert polled["model"] == {"name": "demo_flange", "version": "1", "sha256": v1["sha256"],
                               "size_bytes": v1["size_bytes"], "download_url": v1["download_url"]}
    assert (polled["threshold"], polled["shadow"], polled["model_version"]) == (None, None, "1")
    assert polled["updated_by"] == "test-qa" and polled["previous"] == []
    candidate = {"model_name": "demo_flange", "model_version": "2", "threshold": 0.72, "reason": "new training",
                 "shadow": {"model_name": "demo_flange", "model_version": "1"}}
    assert _assign(service, candidate, role="admin").status_code == 200
    polled = _polled(service)
    assert (polled["model"]["sha256"], polled["threshold"], polled["shadow"]["sha256"]) == (
        v2["sha256"], 0.72, v1["sha256"])
    assert [(p["model"]["version"], p["threshold"]) for p in polled["previous"]] == [("1", None)]
    # a threshold applied on the thresholds page keeps the assigned model, and rollback undoes it too
    url = f"/api/v1/stations/{STATION}/threshold"
    ok = service.client.post(url, json={"threshold": 0.8, "reason": "tighter"}, headers=service.h("qa"))
    assert ok.status_code == 200 and ok.json()["model"]["version"] == "2" and ok.json()["shadow"] is not None
    refused = service.client.post(url, json={"threshold": 0.8, "model_version": "1", "reason": "x"},
                                  headers=service.h("qa"))
    assert refused.status_code == 422 and "assigned demo_flange version 2" in refused.json()["message"]
    back = _rollback(service, "undo the tighter threshold")
    assert back.status_code == 200 and (back.json()["threshold"], back.json()["model"]["version"]) == (0.72, "2")
    back = _rollback(service, "candidate rejects too much")
    assert back.status_code == 200 and back.json()["model"]["version"] == "1" and back.json()["shadow"] is None
    assert back.json()["updated_by"] == "test-qa" and back.json()["threshold"] is None
    assert _rollback(service).status_code == 409
    assert _polled(service)["model"]["sha256"] == v1["sha256"]
    log = [(e["action"], e["actor"], e["reason"]) for e in _audit(service) if e["action"] != "model_upload"]
    assert log == [("model_rollback", "test-qa", "candidate rejects too much"),
                   ("model_rollback", "test-qa", "undo the tighter threshold"), ("threshold", "test-qa", "tighter"),
                   ("model_assign", "test-admin", "new training"), ("model_assign", "test-qa", "first model")]
    assert service.get(f"/api/v1/stations/{OTHER}/assignment", role="edge_line1").status_code == 403


def test_model_upload_limit_is_configurable(db_url, tmp_path):
    from fastapi.testclient import TestClient

    from edge_service import auth
    from edge_service.app import ServiceSettings, create_app

    app = create_app(ServiceSettings(database_url=db_url, image_dir=tmp_path / "img", model_max_bytes=1_000_000))
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {auth.create_token(app.state.engine, 'q', 'qa').token}", **OCTET}
        res = client.post(UPLOAD, content=ms.ours(), headers=headers)  # 1.16 MB by Content-Length
        assert res.status_code == 413 and "1000000" in res.json()["message"]
        chunks = iter([ms.ours()[i:i + 65536] for i in range(0, len(ms.ours()), 65536)])
        res = client.post(UPLOAD, content=chunks, headers=headers)  # chunked: counted while it streams
        assert res.status_code == 413 and "1000000" in res.json()["message"]
        assert client.get(UPLOAD, headers=headers).json() == []
        assert not app.state.settings.models_path.exists() or not any(app.state.settings.models_path.iterdir())


def test_migration_keeps_an_assignment_made_before_it(db_url):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from edge_service.database import MIGRATIONS, make_engine

    engine = make_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(text("INSERT INTO station_assignments VALUES ('a/b/c/d/e', '3', 0.75, 'anna', "
                          "'2026-11-30 10:00:00')"))
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT model_version, threshold, updated_by, model_name, previous "
                                "FROM station_assignments")).one()
        assert tuple(row) == ("3", 0.75, "anna", None, None)
        conn.execute(text("INSERT INTO station_assignments (station_path, updated_by, updated_at) "
                          "VALUES ('a/b/c/d/f', 'x', '2026-11-30 10:00:00')"))  # threshold may be null now
    engine.dispose()


def _with_shadow(live: str, cand: str, minutes_ago: float, part: str) -> dict:
    from datetime import UTC, datetime, timedelta

    row = make_result(verdict=live, at=datetime.now(UTC) - timedelta(minutes=minutes_ago), part_id=part)
    score = 0.8 if cand == "FAIL" else 0.4
    row["shadow"] = {"model": {"name": "demo_flange", "version": "2", "sha256": "b" * 64}, "verdict": cand,
                     "score": score, "threshold": 0.6}
    return row


SHADOW_ROWS = [("PASS", "PASS"), ("PASS", "PASS"), ("PASS", "PASS"), ("FAIL", "FAIL"), ("FAIL", "FAIL"),
               ("FAIL", "PASS"), ("PASS", "FAIL"), ("PASS", "FAIL")]


def post_shadow_results(post) -> list[dict]:
    """Eight results with a shadow verdict (5 agree, 1 only live FAIL, 2 only candidate FAIL, the newest last)
    and two without."""
    rows = [_with_shadow(live, cand, 60 - i, f"S-{i}") for i, (live, cand) in enumerate(SHADOW_ROWS)]
    rows += [make_result(verdict="FAIL"), make_result(verdict="PASS")]
    post(rows)
    return rows


def test_shadow_comparison_from_stored_records(service):
    post_shadow_results(lambda rows: service.post(rows).raise_for_status())
    cmp = service.get("/api/v1/qa/shadow", station=STATION).json()
    assert cmp["scanned"] == 8 and len(cmp["pairs"]) == 1
    pair = cmp["pairs"][0]
    assert (pair["live_model"], pair["live_version"], pair["shadow_model"], pair["shadow_version"]) == (
        "demo", "1", "demo_flange", "2")
    assert (pair["compared"], pair["both_pass"], pair["both_fail"], pair["only_live_fail"],
            pair["only_shadow_fail"]) == (8, 3, 2, 1, 2)
    assert pair["agreement"] == 5 / 8
    assert [d["part_id"] for d in pair["disagreements"]] == ["S-7", "S-6", "S-5"]  # newest first
    assert pair["disagreements"][0]["shadow_score"] == 0.8 and pair["disagreements"][0]["live_verdict"] == "PASS"
    assert service.get("/api/v1/qa/shadow", station=STATION, limit=2).json()["scanned"] == 2
    assert service.get("/api/v1/qa/shadow", station=OTHER).json() == {"station": OTHER, "scanned": 0, "pairs": []}
    assert service.get("/api/v1/qa/shadow", station="plant9/a/b/c/d").status_code == 422


def test_assign_and_roll_back_every_station_under_a_prefix(service):
    assert _upload(service, ms.ours()).status_code == 201 and _upload(service, ms.variant("2")).status_code == 201

    def put(body):
        return service.client.put("/api/v1/qa/assignments", json=body, headers=service.h("qa"))

    def back(prefix):
        return service.client.post("/api/v1/qa/assignments/rollback", json={"station_prefix": prefix,
                                                                             "reason": "back"}, headers=service.h("qa"))

    def versions():
        return [service.get(f"/api/v1/stations/{s}/assignment").json()["model"] for s in (STATION, OTHER)]

    for body, status, why in (({**V1, "station_prefix": "plant9"}, 404, "no registered station under 'plant9'"),
                              ({**V1, "station_prefix": "plant1/"}, 422, "station_prefix"),
                              ({**V1, "model_version": "9", "station_prefix": "plant1"}, 404, "no model")):
        res = put(body)
        assert res.status_code == status and why in res.json()["message"], res.text
    assert versions() == [None, None] and _audit(service, "model_assign") == []
    assert service.client.put("/api/v1/qa/assignments", json={**V1, "station_prefix": "plant1"},
                              headers=service.h("operator")).status_code == 403
    res = put({**V1, "station_prefix": "plant1/area1"})
    assert res.status_code == 200 and [a["station"] for a in res.json()] == sorted([STATION, OTHER])
    assert [m["version"] for m in versions()] == ["1", "1"]
    assert len(_audit(service, "model_assign")) == 2
    res = back("plant1/area1")  # neither has an earlier assignment
    assert res.status_code == 409 and STATION in res.json()["message"] and OTHER in res.json()["message"]
    assert _assign(service, {**V1, "model_version": "2"}).status_code == 200  # STATION only
    res = back("plant1/area1")  # OTHER has none: nothing rolled back
    assert res.status_code == 409 and OTHER in res.json()["message"] and STATION not in res.json()["message"]
    assert [m["version"] for m in versions()] == ["2", "1"] and _audit(service, "model_rollback") == []
    res = back("plant1/area1/line1")
    assert res.status_code == 200 and [a["model"]["version"] for a in res.json()] == ["1"]
    assert [m["version"] for m in versions()] == ["1", "1"]


def test_a_multipart_form_is_refused_with_how_to_send_the_file(service):
    res = service.client.post(UPLOAD, files={"file": ("m.onnx", ms.ours())}, headers=service.h("qa"))
    assert res.status_code == 422 and "application/octet-stream" in res.json()["message"]
    assert service.get(UPLOAD).json() == []


def test_uploads_at_the_same_time_store_one_version(service):
    """Two uploads of the same file, and two different files under one name and version, racing: one row
    each time, the loser of a conflict refused and its file not left behind."""
    from concurrent.futures import ThreadPoolExecutor

    settings = service.client.app.state.settings

    def add(data):
        try:
            return model_store.add_model(service.engine, settings, data, "racer")
        except model_store.ModelConflict as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        same = list(pool.map(add, [ms.ours(), ms.ours()]))
    assert same[0] == same[1] and len(service.get(UPLOAD).json()) == 1
    with ThreadPoolExecutor(2) as pool:
        outcome = list(pool.map(add, [ms.variant("3", threshold=0.8), ms.variant("3", threshold=0.9)]))
    stored = [o for o in outcome if not isinstance(o, Exception)]
    assert len(stored) == 1 and sum(isinstance(o, model_store.ModelConflict) for o in outcome) == 1
    assert sorted(_files(service)) == sorted(f"{m['sha256']}.onnx" for m in service.get(UPLOAD).json())


def test_default_limit_cuts_a_chunked_upload_off_at_64_mb(tmp_path):
    """Against the real server: a chunked upload is refused with 413 once it passes 64 MB, the connection
    closed and the rest never read."""
    from service_support import RunningServer
    from test_hardening_body_limits import ChunkedUpload

    from edge_service import auth
    from edge_service.app import ServiceSettings, create_app
    from edge_service.settings import MAX_MODEL_BYTES

    app = create_app(ServiceSettings(database_url=f"sqlite:///{tmp_path / 'r.db'}", image_dir=tmp_path / "img"))
    upgrade(app.state.engine)
    token = auth.create_token(app.state.engine, "q", "qa").token
    with RunningServer(app) as running:
        upload = ChunkedUpload(running.port, "POST", UPLOAD, {"Authorization": f"Bearer {token}", **OCTET})
        assert upload.send(20 * 1024 * 1024)  # a model of 20 MB would still be read
        upload.send(200 * 1024 * 1024)
        status, body, closed = upload.answer()
    assert status == 413 and str(MAX_MODEL_BYTES) in body["message"] and closed
    assert upload.sent < MAX_MODEL_BYTES + 16 * 1024 * 1024, upload.sent


def test_two_assignments_at_once_keep_each_other_in_the_history(service):
    from concurrent.futures import ThreadPoolExecutor

    from edge_service import model_assignments
    from edge_service.qa_models import AssignmentIn

    for data in (ms.ours(), ms.variant("2"), ms.variant("3")):
        assert _upload(service, data).status_code == 201
    assert _assign(service, V1).status_code == 200

    def assign(version):
        body = AssignmentIn(model_name="demo_flange", model_version=version, reason=f"racer {version}")
        return model_assignments.assign(service.engine, STATION, body, f"racer-{version}")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(assign, ["2", "3"]))
    final = _polled(service)
    chain = [final["model"]["version"]] + [p["model"]["version"] for p in final["previous"]]
    assert sorted(chain[:2]) == ["2", "3"] and chain[2:] == ["1"], chain
