"""The QA workstation's pages (review queue, part viewer, trends, thresholds, models, training); offline: assets
from /static."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from edge_service.dependencies import Settings
from edge_service.routers.pages import PAGES

router = APIRouter(include_in_schema=False)
SHIFT_START_HOURS = (6, 14, 22)  # local time of the browser; "this shift" starts at the latest of these


# The navigation every QA page shares (path, label); the page itself is marked "here".
NAV = (("/qa", "Review queue"), ("/qa/trends", "Trends"), ("/qa/thresholds", "Thresholds"),
       ("/qa/models", "Models"), ("/qa/train", "Train"))
TITLES = {"qa_queue.html": ("review queue", "/qa"), "qa_part.html": ("part viewer", None),
          "qa_trends.html": ("trends", "/qa/trends"), "qa_thresholds.html": ("thresholds", "/qa/thresholds"),
          "qa_models.html": ("models", "/qa/models"), "qa_train.html": ("train a model", "/qa/train")}


def _header(name: str) -> str:
    """The shared head, navigation and token form (qa_header.html) for one page."""
    title, here = TITLES[name]
    here_mark = ' class="here"'
    nav = " ".join(f'<a href="{path}"{here_mark if path == here else ""}>{label}</a>' for path, label in NAV)
    return (PAGES / "qa_header.html").read_text().replace("{title}", title).replace("{nav}", nav)


def _page(name: str, needs_token: bool, **extra: object) -> HTMLResponse:
    config = {"needsToken": needs_token, "shiftStartHours": list(SHIFT_START_HOURS), **extra}
    html = (_header(name) + (PAGES / name).read_text()).replace("/*CONFIG*/", f"window.QA = {json.dumps(config)};")
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/qa", response_class=HTMLResponse)
def review_queue_page(settings: Settings) -> HTMLResponse:
    return _page("qa_queue.html", not settings.insecure_local)


@router.get("/qa/part", response_class=HTMLResponse)
def part_viewer_page(settings: Settings) -> HTMLResponse:
    return _page("qa_part.html", not settings.insecure_local)


@router.get("/qa/trends", response_class=HTMLResponse)
def trends_page(settings: Settings) -> HTMLResponse:
    return _page("qa_trends.html", not settings.insecure_local)


@router.get("/qa/thresholds", response_class=HTMLResponse)
def thresholds_page(settings: Settings) -> HTMLResponse:
    return _page("qa_thresholds.html", not settings.insecure_local)


@router.get("/qa/models", response_class=HTMLResponse)
def models_page(settings: Settings) -> HTMLResponse:
    return _page("qa_models.html", not settings.insecure_local, modelMaxBytes=settings.model_max_bytes)


@router.get("/qa/train", response_class=HTMLResponse)
def training_page(settings: Settings) -> HTMLResponse:
    return _page("qa_train.html", not settings.insecure_local)
