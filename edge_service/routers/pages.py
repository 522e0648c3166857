"""The operator pages (one station live at ``/``, the multi-station overview at ``/overview``), offline:
every asset is served from here. Their settings reach the page in ``window.INSPECTION``."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from edge_service.dependencies import Settings
from edge_service.settings import ServiceSettings

PAGES = Path(__file__).resolve().parents[1] / "pages"
HEARTBEAT_S = 2.0  # the pages ask the stream for a keep-alive this often and call it down after 2.5 of them
router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    """The page's scripts and styles, mounted at /static."""
    return StaticFiles(directory=PAGES / "static")


def page_config(settings: ServiceSettings) -> dict:
    return {"staleSeconds": settings.stale_seconds, "needsToken": not settings.insecure_local,
            "failLatchSeconds": settings.fail_latch_seconds, "alarmFails": settings.alarm_consecutive_fails,
            "heartbeatSeconds": HEARTBEAT_S, "feedTimeoutSeconds": HEARTBEAT_S * 2.5}


def _page(name: str, settings: ServiceSettings) -> HTMLResponse:
    config = f"window.INSPECTION = {json.dumps(page_config(settings))};"
    html = (PAGES / name).read_text().replace("/*CONFIG*/", config)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/", response_class=HTMLResponse)
def operator_page(settings: Settings) -> HTMLResponse:
    return _page("operator.html", settings)


@router.get("/overview", response_class=HTMLResponse)
def overview_page(settings: Settings) -> HTMLResponse:
    return _page("operator_overview.html", settings)
