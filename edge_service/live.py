"""Live results for Server-Sent Events: ingest publishes, each stream connection has its own bounded queue.

Each event is serialised once, into its finished SSE frame, when its batch is stored. The frames are staged
on the event loop and flushed to the subscribers at most every :data:`FLUSH_S` seconds (at once when the feed
was idle, so a lone result goes out without delay): a flush joins the staged frames once per distinct
station prefix and appends that one shared chunk to the queue of every subscriber with that prefix, so under
load a stream is woken and written once per flush, not once per batch, and a client that keeps up sends
the very chunk object every other such client sends (no per-client copy). A subscriber that falls
:data:`MAX_PENDING` events behind (it does not read, or its socket is backed up) is dropped: its stream ends
with an ``event: dropped`` naming the reason, counted in ``inspection_stream_clients_dropped_total``. Every
client that keeps up gets every event; nothing a slow client does makes ingest wait.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter

from edge_service.api_models import LiveEvent
from edge_service.observability import REGISTRY
from inspection.schema import InspectionResult, under_prefix

MAX_PENDING = 1000  # events a client may be behind before it is dropped
FLUSH_S = 0.1  # staged events go out at most this often (coalescing under load; an idle feed sends at once)
DROPPED = Counter("inspection_stream_clients_dropped_total", "Live-stream clients dropped, by reason",
                  ["reason"], registry=REGISTRY)
QUEUE_FULL = "queue_full"


def sse_frame(event: LiveEvent) -> bytes:
    """One result as a finished Server-Sent Events frame."""
    return b"event: result\ndata: " + event.model_dump_json().encode() + b"\n\n"


def result_frame(result: InspectionResult, station_path: str) -> bytes:
    """The frame of ``LiveEvent(**result, station_path=...)``, byte for byte, without building the LiveEvent:
    the result's JSON with the one more field spliced in before its closing brace."""
    body = result.model_dump_json().encode()
    path = json.dumps(station_path, ensure_ascii=False).encode()
    return b"event: result\ndata: " + body[:-1] + b',"station_path":' + path + b"}\n\n"


@dataclass(eq=False)  # hashed by identity: each connection is its own subscriber
class Subscriber:
    prefix: str | None
    max_pending: int = MAX_PENDING
    pending: deque[bytes] = field(default_factory=deque)
    pending_events: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: str | None = None  # the reason, once dropped
    closing: bool = False  # the service is stopping: send what is queued, then end the stream

    def wants(self, station_path: str) -> bool:
        return under_prefix(station_path, self.prefix)

    def offer(self, chunk: bytes, events: int = 1) -> bool:
        """Queue ``events`` frames joined in ``chunk`` (on the event loop); False when that would put the client
        more than ``max_pending`` events behind: it is then dropped."""
        if self.dropped is not None:
            return False
        if self.pending_events + events > self.max_pending:
            self.dropped = QUEUE_FULL
            self.pending.clear()
            self.pending_events = 0
            DROPPED.labels(reason=QUEUE_FULL).inc()
            self.ready.set()
            return False
        self.pending.append(chunk)
        self.pending_events += events
        self.ready.set()
        return True

    async def take(self, timeout: float) -> bytes:
        """Every frame queued so far as one chunk, waiting up to ``timeout`` s for one; b"" when none came."""
        if not self.pending and self.dropped is None and not self.closing:
            try:
                async with asyncio.timeout(timeout):
                    await self.ready.wait()
            except TimeoutError:
                return b""
        self.ready.clear()
        chunk = b"".join(self.pending)
        self.pending.clear()
        self.pending_events = 0
        return chunk


class LiveFeed:
    def __init__(self, flush_s: float = FLUSH_S) -> None:
        self.subscribers: set[Subscriber] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self.flush_s = flush_s
        self._staged: list[tuple[str, bytes]] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self._last_flush = float("-inf")

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def subscribe(self, prefix: str | None, max_pending: int = MAX_PENDING) -> Subscriber:
        sub = Subscriber(prefix.strip("/") if prefix else None, max_pending, closing=self.closing)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def close(self) -> None:
        """The service is stopping (on the event loop): every stream sends what it has queued, then
        ``event: shutdown``, and ends; a stream opened from now on ends at once."""
        self._flush()
        self.closing = True
        for sub in self.subscribers:
            sub.closing = True
            sub.ready.set()

    def _stage(self, frames: list[tuple[str, bytes]]) -> None:
        """On the event loop: keep ``frames`` for the next flush, which is now when the feed was idle."""
        self._staged.extend(frames)
        if self._flush_at is not None:
            return
        assert self.loop is not None
        delay = self._last_flush + self.flush_s - self.loop.time()
        if delay <= 0:
            self._flush()
        else:
            self._flush_at = self.loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        frames, self._staged = self._staged, []
        if not frames:
            return
        self._last_flush = self.loop.time() if self.loop else 0.0
        chunks: dict[str | None, tuple[bytes, int]] = {}  # per distinct prefix: its frames joined, and how many
        for sub in list(self.subscribers):
            if sub.prefix not in chunks:
                wanted = [frame for path, frame in frames if sub.wants(path)]
                chunks[sub.prefix] = (b"".join(wanted), len(wanted))
            chunk, events = chunks[sub.prefix]
            if events and not sub.offer(chunk, events):
                self.subscribers.discard(sub)

    def publish(self, events: list[LiveEvent]) -> None:
        """Thread-safe: serialises each event once and stages the frames on the event loop."""
        if self.loop is None or not self.subscribers or not events:
            return
        frames = [(e.station_path, sse_frame(e)) for e in events]
        self.loop.call_soon_threadsafe(self._stage, frames)

    def publish_results(self, results: Sequence[InspectionResult]) -> None:
        """Like :meth:`publish` for stored results (each with a station), serialised straight from them."""
        if self.loop is None or not self.subscribers or not results:
            return
        frames = [(r.station.path, result_frame(r, r.station.path)) for r in results if r.station is not None]
        self.loop.call_soon_threadsafe(self._stage, frames)
