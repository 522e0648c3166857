"""Property-based run of the API against its own OpenAPI schema (schemathesis), with a valid admin token:
no 5xx, responses conform to the documented schemas and content types. Bounded in examples per operation."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from service_support import STATION, make_result

from edge_service import auth, store
from edge_service.app import ServiceSettings, create_app
from edge_service.database import upgrade
from inspection.schema import InspectionResult, StationContext

_TMP = Path(tempfile.mkdtemp(prefix="schemathesis-"))
APP = create_app(ServiceSettings(database_url=f"sqlite:///{_TMP / 'r.db'}", image_dir=_TMP / "img"))
upgrade(APP.state.engine)
TOKEN = auth.create_token(APP.state.engine, "fuzzer", "admin").token
store.add_station(APP.state.engine, StationContext.from_path(STATION))
store.ingest(APP.state.engine, [InspectionResult.model_validate(make_result()) for _ in range(3)])

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.exclude(path="/api/v1/stream").parametrize()  # an endless stream: covered by test_service_live
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                           checks=[not_a_server_error, response_schema_conformance, content_type_conformance])
