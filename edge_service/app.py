"""The results service: a FastAPI application built by :func:`create_app` from :class:`ServiceSettings`.

The state every route needs (settings, database engine, image store, live feed) lives in ``app.state`` and
reaches the routes through :mod:`edge_service.dependencies`; the routes are in :mod:`edge_service.routers`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from edge_service import redaction
from edge_service.database import make_engine, prepare
from edge_service.errors import register_error_handlers
from edge_service.image_store import ImageStore
from edge_service.limits import BodyLimit
from edge_service.live import LiveFeed
from edge_service.query_rules import single_valued_query
from edge_service.routers import (
    admin,
    docs,
    health,
    images,
    kiosk,
    live,
    models,
    operator,
    pages,
    qa,
    qa_pages,
    qa_thresholds,
    qa_trends,
    results,
    reviews,
    stats,
    training,
)
from edge_service.settings import ServiceSettings
from edge_service.training_jobs import TrainingJobs, jobs_dir

__all__ = ["ServiceSettings", "create_app"]
log = logging.getLogger("edge_service")
DESCRIPTION = ("Ingest, store, query and review inspection results. Every endpoint except /healthz and /readyz "
               "needs `Authorization: Bearer <token>`.")


async def _retention_loop(app: FastAPI) -> None:
    state = app.state
    while True:
        await asyncio.sleep(state.settings.retention_interval_s)
        try:
            await asyncio.to_thread(state.images.enforce_retention, state.engine)
        except Exception:  # keep the loop alive through a database outage
            log.exception("image retention pass failed")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    redaction.install()  # here: uvicorn has configured its loggers by now
    prepare(app.state.engine)
    app.state.training.recover()  # a job left running by a stopped service is marked failed (interrupted)
    app.state.feed.bind(asyncio.get_running_loop())
    task = asyncio.create_task(_retention_loop(app))
    yield
    task.cancel()
    await asyncio.to_thread(app.state.training.shutdown)
    app.state.engine.dispose()


def create_app(settings: ServiceSettings) -> FastAPI:
    app = FastAPI(title="Inspection results service", version="1.0", lifespan=_lifespan, description=DESCRIPTION,
                  docs_url=None, redoc_url=None,  # served offline by routers.docs
                  dependencies=[Depends(single_valued_query)])
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.images = ImageStore(settings.image_dir, settings.image_max_age_days, settings.image_max_bytes,
                                  settings.image_max_pixels)
    app.state.feed = LiveFeed()
    app.state.training = TrainingJobs(jobs_dir(settings), settings.training)
    app.add_middleware(BodyLimit)
    register_error_handlers(app)
    for module in (health, results, reviews, images, stats, live, admin, pages, docs):
        app.include_router(module.router)
    for operator_module in (operator, kiosk):  # the operator pages' data and kiosk login
        app.include_router(operator_module.router)
    app.include_router(kiosk.admin_router)
    for qa_module in (qa, qa_trends, qa_thresholds, models, training, qa_pages):  # the QA workstation
        app.include_router(qa_module.router)
    app.mount("/static", pages.static_files(), name="static")
    app.mount(docs.ASSETS_URL, docs.asset_files(), name="docs-assets")
    return app
