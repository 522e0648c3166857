"""Token scopes: a station prefix is whole segments of a station path, and only edge tokens have one."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edge_service import auth
from inspection.cli import app as cli


def _create(service, **body):
    return service.client.post("/api/v1/tokens", json={"name": "scoped", **body}, headers=service.h("admin"))


@pytest.mark.parametrize("prefix", ["", "/", "plant1/", "/plant1", "plant1//area1", "plant1/area 1", "plant1/#",
                                    "plant1/+/line1", "a/b/c/d/e/f", "x" * 65, "a/" * 200 + "a", "plant1\n",
                                    "-plant1"])
def test_bad_station_prefixes_are_refused_and_create_no_token(service, prefix):
    before = len(service.get("/api/v1/tokens", role="admin").json())
    res = _create(service, role="edge", station_prefix=prefix)
    assert res.status_code == 422, res.text
    assert "station_prefix" in res.json()["message"]
    assert len(service.get("/api/v1/tokens", role="admin").json()) == before


@pytest.mark.parametrize("role", ["operator", "qa", "admin"])
def test_only_edge_tokens_have_a_station_prefix(service, role):
    res = _create(service, role=role, station_prefix="plant1/area1")
    assert res.status_code == 422 and "only edge tokens" in res.json()["message"], res.text
    with pytest.raises(ValueError, match="only edge tokens"):
        auth.create_token(service.engine, "x", role, "plant1")


@pytest.mark.parametrize("prefix", ["plant1", "plant1/area1/line1", "plant1/area1/line1/cell1/st1", "p.1/a-2/l_3"])
def test_good_station_prefixes_are_kept(service, prefix):
    res = _create(service, role="edge", station_prefix=prefix)
    assert res.status_code == 201, res.text
    listed = {t["id"]: t for t in service.get("/api/v1/tokens", role="admin").json()}
    assert listed[res.json()["id"]]["station_prefix"] == prefix


def test_cli_refuses_a_bad_prefix(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    bad = CliRunner().invoke(cli, ["token", "create", "--role", "edge", "--name", "x", "--station", "plant1/a b",
                                   "--database-url", db])
    assert bad.exit_code == 2 and "station_prefix" in bad.output
    wrong_role = CliRunner().invoke(cli, ["token", "create", "--role", "qa", "--name", "x", "--station", "plant1",
                                          "--database-url", db])
    assert wrong_role.exit_code == 2 and "only edge tokens" in wrong_role.output
