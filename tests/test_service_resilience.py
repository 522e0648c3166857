"""Databases going away and coming back, restarts, and start-up errors."""

from __future__ import annotations

import time

import httpx
import pytest
from service_support import PG_URL, STATION, RunningServer, TcpProxy, make_result, need_service
from typer.testing import CliRunner

from edge_service import auth, store
from edge_service.app import ServiceSettings, create_app
from inspection.cli import app as cli
from inspection.schema import StationContext


def test_restart_keeps_data(db_url, tmp_path):
    from fastapi.testclient import TestClient

    settings = ServiceSettings(database_url=db_url, image_dir=tmp_path / "img")
    app = create_app(settings)
    with TestClient(app) as client:
        token = auth.create_token(app.state.engine, "e", "admin").token
        store.add_station(app.state.engine, StationContext.from_path(STATION))
        r = make_result()
        assert client.post("/api/v1/results", json={"results": [r]},
                           headers={"Authorization": f"Bearer {token}"}).status_code == 200
    app2 = create_app(settings)  # migrations run again on start: data and tokens stay
    with TestClient(app2) as client:
        got = client.get(f"/api/v1/results/{r['inspection_id']}", headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200 and got.json()["inspection_id"] == r["inspection_id"]


def test_database_outage_gives_503_then_recovers(tmp_path):
    need_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    schema = "t_outage_" + str(int(time.time() * 1000))
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    proxy = TcpProxy(5432)
    try:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test?options=-csearch_path%3D{schema}"
        app = create_app(ServiceSettings(database_url=url, image_dir=tmp_path / "img"))
        with RunningServer(app) as server:
            token = auth.create_token(app.state.engine, "e", "admin").token
            store.add_station(app.state.engine, StationContext.from_path(STATION))
            h = {"Authorization": f"Bearer {token}"}
            before = make_result()
            assert httpx.post(f"{server.url}/api/v1/results", json={"results": [before]}, headers=h).status_code == 200
            proxy.cut()
            during = make_result()
            res = httpx.post(f"{server.url}/api/v1/results", json={"results": [during]}, headers=h, timeout=30)
            # the token check itself needs the database: either way the sender is told to retry
            assert res.status_code == 503, res.text
            assert res.headers.get("Retry-After") == "5"
            assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 503
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            proxy.restore()
            for _ in range(50):  # the pool reconnects (pre-ping)
                res = httpx.post(f"{server.url}/api/v1/results", json={"results": [during, before]}, headers=h)
                if res.status_code == 200:
                    break
                time.sleep(0.2)
            assert res.json() == {"stored": [during["inspection_id"]], "duplicates": [before["inspection_id"]]}
    finally:
        proxy.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:1/test", "sqlite:////nonexistent/dir/x.db"])
def test_unreachable_database_at_start_is_a_clear_error(url):
    res = CliRunner().invoke(cli, ["serve", "--database-url", url])
    assert res.exit_code == 2
    assert "cannot reach the database" in res.output


def test_insecure_local_refuses_other_addresses():
    res = CliRunner().invoke(cli, ["serve", "--insecure-local", "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "127.0.0.1" in res.output
