from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from gige_support import fake_camera  # noqa: F401 (the GigE tests' fixture: Aravis' simulated camera)

from inspection.model.training import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "datasets" / "samples"


@pytest.fixture(scope="session", autouse=True)
def station_locks_of_this_run(tmp_path_factory):
    """The line runner's station lock files in this test run's own folder: another run of the suite (or a
    station really running on this box) holding the same station must not make these tests fail."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSPECTION_LOCK_DIR", str(tmp_path_factory.mktemp("station-locks")))
        yield


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def small_model(tmp_path_factory) -> Path:
    """A model trained on the flange sample with a small bank (quick, and still a real model)."""
    out = tmp_path_factory.mktemp("model") / "flange_small.onnx"
    train(SAMPLES / "flange" / "train" / "good", out,
          TrainConfig(name="flange_small", bank_size=256, holdout_fraction=0.25, progress=False),
          defects_dir=SAMPLES / "flange" / "test")
    return out


@pytest.fixture(scope="session")
def separately_calibrated_model(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(model, its --good folder, its --calib-good folder): a tiny model whose threshold was calibrated on a
    separate folder of good images (as `make demo-models` trains the shipped ones), not a hold-out fraction."""
    root = tmp_path_factory.mktemp("calibrated")
    good = root / "good"
    good.mkdir()
    for p in sorted((SAMPLES / "flange" / "train" / "good").glob("*.png"))[:20]:
        shutil.copy(p, good / p.name)
    calib = SAMPLES / "flange" / "test" / "good"
    out = root / "flange_calibrated.onnx"
    train(good, out, TrainConfig(name="flange_calibrated", bank_size=64, progress=False), calib_good_dir=calib)
    return out, good, calib


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same suite on the embedded SQLite and on the real PostgreSQL (a fresh schema per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.db'}"
        return
    import psycopg
    from service_support import PG_URL, need_service

    need_service("PostgreSQL", "127.0.0.1", 5432)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def service(db_url, tmp_path):
    """The app in-process (lifespan run), with a token of each role and two registered stations."""
    from fastapi.testclient import TestClient
    from service_support import OTHER, STATION, Service

    from edge_service import auth, store
    from edge_service.app import ServiceSettings, create_app
    from inspection.schema import StationContext

    app = create_app(ServiceSettings(database_url=db_url, image_dir=tmp_path / "images", stale_seconds=3))
    with TestClient(app) as client:
        engine = app.state.engine
        svc = Service(client, engine)
        for role in auth.ROLES:
            svc.tokens[role] = auth.create_token(engine, f"test-{role}", role).token
        svc.tokens["edge_line1"] = auth.create_token(engine, "edge-line1", "edge", "plant1/area1/line1").token
        for path in (STATION, OTHER):
            store.add_station(engine, StationContext.from_path(path))
        yield svc


@pytest.fixture
def service_process(tmp_path):
    """`inspection serve` in its own process (SQLite), started; always stopped at teardown."""
    from line_support import ServiceProcess

    proc = ServiceProcess(tmp_path)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
