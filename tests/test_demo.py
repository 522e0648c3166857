"""`make demo` as a newcomer runs it: `inspection demo` brings up the service, the page and a simulated line."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import httpx
import pytest
from service_support import free_port


def _ten_results(base: str) -> list[dict]:
    """The service's newest results once it holds at least 10 (the demo line delivers them); fails after 60 s."""
    deadline, items = time.monotonic() + 60, []
    while time.monotonic() < deadline and len(items) < 10:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            items = httpx.get(f"{base}/api/v1/results", params={"limit": 50}, timeout=2).json().get("items", [])
        time.sleep(0.5)
    assert len(items) >= 10, "the demo line delivered no results"
    return items


@pytest.mark.slow
def test_demo_runs_the_whole_line_on_localhost(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "inspection.cli", "demo", "--port", str(port), "--rate", "10",
                             "--workdir", str(tmp_path / "demo"), "--duration", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        items = _ten_results(base)
        assert items[0]["station"]["station"] == "station1" and items[0]["model"]["name"] == "demo_flange"
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "STALE" in page.text and '"needsToken": false' in page.text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert "INSECURE LOCAL MODE" in out and "operator page" in out
    assert proc.returncode == 0, out


@pytest.mark.slow
def test_ctrl_c_stops_the_line_before_the_service_so_every_result_is_delivered(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group. The service must outlive the line's last
    delivery: no "delivery failed" retries at exit, and the service holds every result the demo counted."""
    import re
    import signal
    import sqlite3

    port, workdir = free_port(), tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "inspection.cli", "demo", "--port", str(port), "--rate", "10",
                             "--workdir", str(workdir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        _ten_results(f"http://127.0.0.1:{port}")
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert "delivery failed" not in out, out
    counted = re.search(r"(\d+) PASS, (\d+) FAIL delivered", out)
    assert counted, out
    with contextlib.closing(sqlite3.connect(workdir / "results.db")) as db:
        stored = db.execute("SELECT count(*) FROM results").fetchone()[0]
    assert stored == int(counted[1]) + int(counted[2])
