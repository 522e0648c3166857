"""Images: upload, fetch by inspection id only, limits, and retention by age and bytes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import cv2
import numpy as np
from service_support import make_result
from sqlalchemy import update

from edge_service.database import images as images_table
from edge_service.database import utcnow
from edge_service.image_store import MAX_IMAGE_BYTES, ImageStore


def _png(seed: int = 0, size: int = 64) -> bytes:
    img = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def _put(service, rid, data, kind="original", content_type="image/png", role="edge"):
    return service.client.put(f"/api/v1/results/{rid}/images/{kind}", content=data,
                              headers={**service.h(role), "Content-Type": content_type})


def test_upload_and_fetch(service):
    r = make_result(verdict="FAIL")
    service.post([r])
    rid = r["inspection_id"]
    png = _png()
    assert _put(service, rid, png).status_code == 204
    jpg = cv2.imencode(".jpg", np.zeros((32, 32, 3), np.uint8))[1].tobytes()
    assert _put(service, rid, jpg, "overlay", "image/jpeg").status_code == 204
    got = service.get(f"/api/v1/results/{rid}/images/original")
    assert got.status_code == 200 and got.content == png and got.headers["content-type"] == "image/png"
    assert service.get(f"/api/v1/results/{rid}").json()["images"] == ["original", "overlay"]
    assert _put(service, rid, _png(1)).status_code == 204  # re-upload replaces
    assert service.get(f"/api/v1/results/{rid}/images/original").content == _png(1)
    assert service.get(f"/api/v1/results/{rid}/images/original", role="edge").status_code == 403


def test_bad_uploads_are_refused_and_keep_the_old_image(service):
    r = make_result()
    service.post([r])
    rid = r["inspection_id"]
    _put(service, rid, _png())
    for data, ctype, status in ((b"GIF89a....", "image/gif", 415), (b"hello", "image/png", 422),
                                (b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "image/png", 422), (b"", "image/png", 422),
                                (b"\xff\xd8" + b"\0" * 100, "image/jpeg", 422)):
        res = _put(service, rid, data, content_type=ctype)
        assert res.status_code == status, (ctype, res.text)
        assert res.json()["error"] == "bad_image"
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_IMAGE_BYTES + 1)
    assert _put(service, rid, big).status_code == 413
    assert service.get(f"/api/v1/results/{rid}/images/original").content == _png()
    assert _put(service, uuid.uuid4(), _png()).status_code == 404  # no such result
    assert _put(service, rid, _png(), kind="../../etc").status_code in (404, 405, 422)
    assert service.get("/api/v1/results/not-a-uuid/images/original").status_code == 422
    assert service.get(f"/api/v1/results/{rid}/images/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)


def _age(service, rid, days):
    with service.engine.begin() as conn:
        conn.execute(update(images_table).where(images_table.c.inspection_id == rid)
                     .values(created_at=utcnow() - timedelta(days=days)))


def test_retention_by_age_spares_unreviewed_fails(service, tmp_path):
    old_pass, old_fail, old_fail_reviewed, new = (make_result(verdict=v) for v in ("PASS", "FAIL", "FAIL", "PASS"))
    service.post([old_pass, old_fail, old_fail_reviewed, new])
    for r in (old_pass, old_fail, old_fail_reviewed, new):
        _put(service, r["inspection_id"], _png())
    service.client.post(f"/api/v1/results/{old_fail_reviewed['inspection_id']}/review", headers=service.h("qa"),
                        json={"decision": "confirmed_defect"})
    for r in (old_pass, old_fail, old_fail_reviewed):
        _age(service, r["inspection_id"], 40)
    store = ImageStore(service.client.app.state.images.root, max_age_days=30, max_total_bytes=None)
    deleted = store.enforce_retention(service.engine)
    assert deleted == {"age": 2, "bytes": 0, "forced": 0}
    kept = {r["inspection_id"]: store.find(service.engine, r["inspection_id"], "original") is not None
            for r in (old_pass, old_fail, old_fail_reviewed, new)}
    assert kept == {old_pass["inspection_id"]: False, old_fail["inspection_id"]: True,
                    old_fail_reviewed["inspection_id"]: False, new["inspection_id"]: True}


def test_retention_by_bytes_oldest_first_and_forced_only_when_needed(service):
    rows = [make_result(verdict="FAIL" if i == 0 else "PASS") for i in range(4)]
    service.post(rows)
    size = len(_png())
    for i, r in enumerate(rows):
        _put(service, r["inspection_id"], _png())
        _age(service, r["inspection_id"], 10 - i)  # rows[0] oldest
    root = service.client.app.state.images.root
    # room for 2: the two oldest PASS images go; the unreviewed FAIL (oldest of all) stays
    deleted = ImageStore(root, None, 2 * size).enforce_retention(service.engine)
    assert deleted == {"age": 0, "bytes": 2, "forced": 0}
    store = ImageStore(root, None, None)
    assert store.find(service.engine, rows[0]["inspection_id"], "original") is not None
    # room for nothing: only then the unreviewed FAIL's image is deleted, and counted as forced
    deleted = ImageStore(root, None, 0).enforce_retention(service.engine)
    assert deleted == {"age": 0, "bytes": 1, "forced": 1}
    assert 'inspection_images_deleted_total{reason="forced"}' in service.get("/metrics").text
