"""The live stream of newly stored results (Server-Sent Events), optionally for a station prefix."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from edge_service.api_models import LiveEventSlim, LiveFields
from edge_service.dependencies import Feed, Reader
from edge_service.errors import documented
from edge_service.ingest_rules import Line330
from edge_service.live import LiveFeed, Subscriber
from edge_service.observability import STREAM_CLIENTS

router = APIRouter(prefix="/api/v1", tags=["live"])
KEEPALIVE_S = 15.0
KEEPALIVE = b": keepalive\n\n"
SHUTDOWN = b"event: shutdown\ndata: the service is stopping\n\n"
FIELDS_HELP = ("`full` (default): each event is a LiveEvent, the whole published record with `station_path`; `slim`: "
               "only what a live display needs, about 40 % of the bytes: " + ", ".join(LiveEventSlim.model_fields)
               + " (the whole record is GET /api/v1/results/{inspection_id}, its images "
               "GET /api/v1/results/{inspection_id}/images/{kind})")


async def _events(feed: LiveFeed, sub: Subscriber, max_seconds: float | None,
                  keepalive: float = KEEPALIVE_S) -> AsyncIterator[bytes]:
    deadline = time.monotonic() + max_seconds if max_seconds else None
    try:
        yield b": connected\n\n"
        while True:  # a disconnect cancels this generator: StreamingResponse listens for it alongside
            wait = min(keepalive, max(0.05, deadline - time.monotonic())) if deadline else keepalive
            chunks = await sub.take(wait)
            if sub.dropped is not None:
                yield f"event: dropped\ndata: {sub.dropped}\n\n".encode()
                break
            for chunk in chunks:
                yield chunk
            if sub.closing:
                yield SHUTDOWN
                break
            if not chunks:
                yield KEEPALIVE
            if deadline and time.monotonic() > deadline:
                break
    finally:
        feed.unsubscribe(sub)
        STREAM_CLIENTS.dec()


@router.get("/stream", response_class=StreamingResponse,
            responses={**documented(400, 401, 403, 422),
                       200: {"content": {"text/event-stream": {}},
                             "description": "`event: result` with the result as `data` (its form chosen by "
                                            "`fields`), and keep-alives; "
                                            "`event: dropped` (data: the reason) ends the stream of a client "
                                            "too far behind, `event: shutdown` ends every stream when the "
                                            "service stops"}})
async def stream(request: Request, _who: Reader, feed: Feed,
                 station: Line330 | None = None,
                 max_seconds: Annotated[float | None, Query(gt=0, le=86400)] = None,
                 heartbeat: Annotated[float | None, Query(ge=0.5, le=60, description="seconds between keep-alives "
                                                          "(default 15): a client that hears nothing for longer "
                                                          "knows the feed is down")] = None,
                 fields: Annotated[LiveFields, Query(description=FIELDS_HELP)] = "full") -> StreamingResponse:
    sub = feed.subscribe(station, fields=fields)
    STREAM_CLIENTS.inc()
    return StreamingResponse(_events(feed, sub, max_seconds, heartbeat or KEEPALIVE_S), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
