"""Property-based run of the API against its own OpenAPI schema (schemathesis) with every check it has (server
errors, status codes, content types, response schemas, headers, negative data refused, positive data accepted,
unsupported methods answered 405 with Allow, missing auth, ...) on SQLite and on PostgreSQL, with a valid
admin token. ``SCHEMATHESIS_EXAMPLES`` sets the examples per operation (200 for the issue's acceptance run)."""

from __future__ import annotations

import atexit
import os
import socket
import tempfile
import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from service_support import PG_URL, STATION, in_ci, make_result

from edge_service import auth, store
from edge_service.app import ServiceSettings, create_app
from edge_service.database import upgrade
from inspection.schema import InspectionResult, StationContext

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
_TMP = Path(tempfile.mkdtemp(prefix="schemathesis-"))


def _app(db_url: str, name: str):
    app = create_app(ServiceSettings(database_url=db_url, image_dir=_TMP / f"img-{name}"))
    upgrade(app.state.engine)
    app.state.fuzz_token = auth.create_token(app.state.engine, "fuzzer", "admin").token
    store.add_station(app.state.engine, StationContext.from_path(STATION))
    store.ingest(app.state.engine, [InspectionResult.model_validate(make_result()) for _ in range(3)])
    return app


def _postgres_app():
    """The app on a fresh schema of the real PostgreSQL, or None when it is unreachable."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        return None
    import psycopg

    name = f"t_fuzz_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")

    def drop() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")

    app = _app(f"{PG_URL}?options=-csearch_path%3D{name}", "pg")
    atexit.register(drop)
    atexit.register(app.state.engine.dispose)
    return app


SQLITE_APP = _app(f"sqlite:///{_TMP / 'r.db'}", "sqlite")
PG_APP = _postgres_app()
sqlite_schema = schemathesis.openapi.from_asgi("/openapi.json", SQLITE_APP)
pg_schema = schemathesis.openapi.from_asgi("/openapi.json", PG_APP or SQLITE_APP)


# Still open (issue 9 item 7): these operations take inputs the schema cannot yet describe, so a schema-valid
# request may rightly be refused: times outside 2000..2100 UTC (no range keyword for date-time), and ingest
# items whose station is missing or unknown (the item schema is not documented as strictly as it is checked).
# Only the positive-data-acceptance check is skipped for them; every other check runs.
# The QA workstation's operations (issue 10) likewise refuse schema-valid input they cannot yet document: station
# prefixes that must be registered or whole segments, model versions with no reviewed results, periods too
# long for their bucket, time ranges.
OPEN_POSITIVE = {("POST", "/api/v1/results"), ("GET", "/api/v1/results"), ("GET", "/api/v1/stats"),
                 ("PUT", "/api/v1/qa/defect-classes"), ("POST", "/api/v1/stations/{station}/threshold"),
                 ("GET", "/api/v1/stations/{station}/assignment"), ("GET", "/api/v1/qa/trends"),
                 ("GET", "/api/v1/qa/trends.csv"), ("GET", "/api/v1/qa/thresholds/evidence"),
                 ("GET", "/api/v1/qa/queue"),
                 # models on the service: an upload must be an inspection model (ONNX with our metadata), an
                 # assignment must name an uploaded model and a registered station, rollback needs an earlier one
                 ("POST", "/api/v1/models"), ("PUT", "/api/v1/stations/{station}/assignment"),
                 ("POST", "/api/v1/stations/{station}/assignment/rollback"),
                 ("GET", "/api/v1/stations/{station}/assignment/audit"), ("GET", "/api/v1/qa/shadow"),
                 ("PUT", "/api/v1/qa/assignments"), ("POST", "/api/v1/qa/assignments/rollback")}
# A training job's upload is zips of images: what they must hold (images of one size, at least ten) is beyond
# what a schema says, so a schema-valid upload is mostly refused.
OPEN_POSITIVE.add(("POST", "/api/v1/training/jobs"))


def _excluded(case) -> list:
    return [positive_data_acceptance] if (case.method.upper(), case.path) in OPEN_POSITIVE else []


def _unforged(case) -> None:
    """A pagination cursor is valid only when this service gave it out (test_service_api checks that a forged
    one is a 422): random strings would be schema-valid yet rightly refused, so cursors are not fuzzed."""
    if case.query:
        case.query.pop("cursor", None)


FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@sqlite_schema.exclude(path="/api/v1/stream").parametrize()  # an endless stream: covered by test_service_live
@FUZZ
def test_api_conforms_to_its_schema_on_sqlite(case):
    _unforged(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {SQLITE_APP.state.fuzz_token}"},
                           excluded_checks=_excluded(case))


@pg_schema.exclude(path="/api/v1/stream").parametrize()
@FUZZ
def test_api_conforms_to_its_schema_on_postgresql(case):
    if PG_APP is None:
        message = "PostgreSQL at 127.0.0.1:5432 is unreachable; start it (make test starts it) to run this test"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    _unforged(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {PG_APP.state.fuzz_token}"},
                           excluded_checks=_excluded(case))
