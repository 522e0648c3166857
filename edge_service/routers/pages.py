"""The operator page (one station live, offline: every asset is served from here)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from edge_service.dependencies import Settings

PAGES = Path(__file__).resolve().parents[1] / "pages"
router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    """The page's scripts and styles, mounted at /static."""
    return StaticFiles(directory=PAGES / "static")


@router.get("/", response_class=HTMLResponse)
def operator_page(settings: Settings) -> HTMLResponse:
    config = {"staleSeconds": settings.stale_seconds, "needsToken": not settings.insecure_local}
    html = (PAGES / "operator.html").read_text().replace("/*CONFIG*/", f"window.INSPECTION = {json.dumps(config)};")
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
