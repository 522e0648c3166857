"""Live results for Server-Sent Events: ingest publishes, each stream connection has its own queue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from edge_service.api_models import LiveEvent
from inspection.schema import under_prefix


@dataclass(eq=False)  # hashed by identity: each connection is its own subscriber
class Subscriber:
    prefix: str | None
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))

    def wants(self, station_path: str) -> bool:
        return under_prefix(station_path, self.prefix)


class LiveFeed:
    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def subscribe(self, prefix: str | None) -> Subscriber:
        sub = Subscriber(prefix.strip("/") if prefix else None)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def _deliver(self, events: list[tuple[str, str]]) -> None:
        for sub in list(self.subscribers):
            for station_path, payload in events:
                if sub.wants(station_path):
                    if sub.queue.full():  # a slow client loses its oldest events, never blocks ingest
                        sub.queue.get_nowait()
                    sub.queue.put_nowait(payload)

    def publish(self, events: list[LiveEvent]) -> None:
        """Thread-safe: called from the ingest worker threads."""
        if self.loop is None or not self.subscribers or not events:
            return
        payloads = [(e.station_path, e.model_dump_json()) for e in events]
        self.loop.call_soon_threadsafe(self._deliver, payloads)
