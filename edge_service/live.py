"""Live results for Server-Sent Events: ingest publishes, each stream connection has its own queue."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field


@dataclass(eq=False)  # hashed by identity: each connection is its own subscriber
class Subscriber:
    prefix: str | None
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=1000))

    def wants(self, station_path: str) -> bool:
        p = self.prefix
        return not p or station_path == p or station_path.startswith(p + "/")


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

    def publish(self, records: list[dict]) -> None:
        """Thread-safe: called from the ingest worker threads."""
        if self.loop is None or not self.subscribers or not records:
            return
        events = [(r["station_path"], json.dumps(r)) for r in records]
        self.loop.call_soon_threadsafe(self._deliver, events)
