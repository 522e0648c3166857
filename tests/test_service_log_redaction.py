"""Tokens never reach the logs: not a token sent (and refused) in a URL, not one in a path."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import httpx
from service_support import free_port

from edge_service.redaction import RedactTokens, redact

SECRET = "insp_s3cr3tV4lue-_xyz"


def test_redact_covers_token_parameters_and_token_shapes():
    for raw in (f"/api/v1/results?access_token={SECRET}", f"/x?a=1&TOKEN={SECRET}&b=2", f"/x?apikey={SECRET}#f",
                f"/api/v1/results/{SECRET}", f"/x?api_key=plainsecret&y={SECRET}"):
        out = redact(raw)
        assert SECRET not in out and "s3cr3t" not in out and "plainsecret" not in out, out
        assert "[REDACTED]" in out
    assert redact("/api/v1/results?station=plant1&limit=5") == "/api/v1/results?station=plant1&limit=5"


def test_filter_keeps_the_number_of_access_log_arguments():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/a?token={SECRET}", "1.1", 400), None)
    assert RedactTokens().filter(record)
    assert SECRET not in record.getMessage() and record.getMessage().endswith("HTTP/1.1\" 400")


def test_access_log_of_the_running_service_has_no_token(tmp_path):
    port = free_port()
    env = {**os.environ, "INSPECTION_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "inspection.cli", "serve", "--port", str(port), "--access-log",
                             "--image-dir", str(tmp_path / "img")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "service did not start"
                time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/v1/results?access_token={SECRET}").status_code == 400
        assert httpx.get(f"{base}/api/v1/results?limit=1&token={SECRET}").status_code == 400
        assert httpx.get(f"{base}/api/v1/results/{SECRET}").status_code in (401, 404, 422)
        assert httpx.get(f"{base}/healthz?marker=end").status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "marker=end" in out, out  # the access log was written
    assert "GET /api/v1/results?access_token=[REDACTED]" in out, out
    assert SECRET not in out and "s3cr3t" not in out, out
