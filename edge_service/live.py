"""Live results for Server-Sent Events: ingest publishes, each stream connection has its own bounded queue.

Each event is serialised once, into its finished SSE frame, when its batch is stored. The frames are staged
on the event loop and flushed to the subscribers at most every :data:`FLUSH_S` seconds (at once when the feed
was idle, so a lone result goes out without delay); while flushes carry :data:`BUSY_EVENTS` events or more,
each doubles the interval to the next, up to :data:`MAX_FLUSH_S` (waking 200 streams costs about the same
whether they are sent 10 events or 1,000, so heavy load goes out in fewer, larger chunks). A flush joins the
staged frames once per distinct station prefix and form and appends that one shared chunk to the queue of
every subscriber with that prefix and form, so under load a stream is woken and written once per flush, not
once per batch, and a client that keeps up sends the very chunk object every other such client sends (no
per-client copy). A subscriber that falls :data:`MAX_PENDING` events behind (it does not read, or its socket
is backed up) is dropped: its stream ends with an ``event: dropped`` naming the reason, counted in
``inspection_stream_clients_dropped_total``. Every client that keeps up gets every event; nothing a slow
client does makes ingest wait.

A stream asks for one of two forms (:data:`~edge_service.api_models.LiveFields`): ``full``, a LiveEvent (the
whole published record), or ``slim``, a LiveEventSlim (what a live display needs, about 40 % of the bytes:
with many clients, the bytes copied through the sockets are a large part of what the feed costs on both
ends). Each form is serialised once per event, and only while some subscriber wants it.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter

from edge_service.api_models import LiveEvent, LiveEventSlim, LiveFields
from edge_service.observability import REGISTRY
from inspection.schema import InspectionResult, under_prefix

MAX_PENDING = 10_000  # events a client may be behind before it is dropped (several flushes' worth under load)
FLUSH_S = 0.1  # staged events go out at most this often (coalescing under load; an idle feed sends at once)
MAX_FLUSH_S = 0.5  # the longest interval between flushes, under heavy load
BUSY_EVENTS = 200  # a flush with at least this many events doubles the interval to the next (up to MAX_FLUSH_S)
DROPPED = Counter("inspection_stream_clients_dropped_total", "Live-stream clients dropped, by reason",
                  ["reason"], registry=REGISTRY)
QUEUE_FULL = "queue_full"
SLIM_FIELDS: set[str] = set(LiveEventSlim.model_fields) - {"station_path"}  # taken from the published record
SLIM_EVENT_FIELDS: set[str] = set(LiveEventSlim.model_fields)
Frames = dict[LiveFields, bytes]  # one event's finished frame per form


def sse_frame(event: LiveEvent, fields: LiveFields = "full") -> bytes:
    """One result as a finished Server-Sent Events frame, in the form ``fields``."""
    body = event.model_dump_json(include=SLIM_EVENT_FIELDS if fields == "slim" else None)
    return b"event: result\ndata: " + body.encode() + b"\n\n"


def result_frame(result: InspectionResult, station_path: str, fields: LiveFields = "full") -> bytes:
    """The frame of ``LiveEvent(**result, station_path=...)`` (or of its LiveEventSlim), byte for byte, without
    building either: the result's JSON with the one more field spliced in before its closing brace."""
    body = result.model_dump_json(include=SLIM_FIELDS if fields == "slim" else None).encode()
    path = json.dumps(station_path, ensure_ascii=False).encode()
    return b"event: result\ndata: " + body[:-1] + b',"station_path":' + path + b"}\n\n"


@dataclass(eq=False)  # hashed by identity: each connection is its own subscriber
class Subscriber:
    prefix: str | None
    max_pending: int = MAX_PENDING
    fields: LiveFields = "full"
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

    async def take(self, timeout: float) -> list[bytes]:
        """Every chunk queued so far, waiting up to ``timeout`` s for one; [] when none came. The chunks are the
        ones every other subscriber of the same prefix and form is sent: not joined, which would copy them once
        per client."""
        if not self.pending and self.dropped is None and not self.closing:
            try:
                async with asyncio.timeout(timeout):
                    await self.ready.wait()
            except TimeoutError:
                return []
        self.ready.clear()
        chunks = list(self.pending)
        self.pending.clear()
        self.pending_events = 0
        return chunks


class LiveFeed:
    def __init__(self, flush_s: float = FLUSH_S, max_flush_s: float = MAX_FLUSH_S, busy_events: int = BUSY_EVENTS
                 ) -> None:
        self.subscribers: set[Subscriber] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self.flush_s, self.max_flush_s, self.busy_events = flush_s, max_flush_s, busy_events
        self.interval = flush_s  # to the next flush: longer while flushes are busy
        self._staged: list[tuple[str, Frames]] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self._last_flush = float("-inf")

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def subscribe(self, prefix: str | None, max_pending: int = MAX_PENDING, fields: LiveFields = "full"
                  ) -> Subscriber:
        sub = Subscriber(prefix.strip("/") if prefix else None, max_pending, fields, closing=self.closing)
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

    def _stage(self, frames: list[tuple[str, Frames]]) -> None:
        """On the event loop: keep ``frames`` for the next flush, which is now when the feed was idle."""
        self._staged.extend(frames)
        if self._flush_at is not None:
            return
        assert self.loop is not None
        delay = self._last_flush + self.interval - self.loop.time()
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
        # every stream woken costs the same whatever it is sent: under heavy load wake them less often
        busy = len(frames) >= self.busy_events
        self.interval = min(self.interval * 2, self.max_flush_s) if busy else self.flush_s
        # per distinct prefix and form: its frames joined, and how many. A form missing from an event's frames
        # was wanted by no subscriber when the event was stored: one who asked for it since is not owed it.
        chunks: dict[tuple[str | None, LiveFields], tuple[bytes, int]] = {}
        for sub in list(self.subscribers):
            key = sub.prefix, sub.fields
            if key not in chunks:
                wanted = [by_form[sub.fields] for path, by_form in frames
                          if sub.fields in by_form and sub.wants(path)]
                chunks[key] = (b"".join(wanted), len(wanted))
            chunk, events = chunks[key]
            if events and not sub.offer(chunk, events):
                self.subscribers.discard(sub)

    def _forms(self) -> set[LiveFields]:
        return {sub.fields for sub in tuple(self.subscribers)}  # the copy is atomic: publish may run off the loop

    def publish(self, events: list[LiveEvent]) -> None:
        """Thread-safe: serialises each event once per form some subscriber wants, and stages the frames on the
        event loop."""
        if self.loop is None or not self.subscribers or not events:
            return
        forms = self._forms()
        frames = [(e.station_path, {f: sse_frame(e, f) for f in forms}) for e in events]
        self.loop.call_soon_threadsafe(self._stage, frames)

    def publish_results(self, results: Sequence[InspectionResult]) -> None:
        """Like :meth:`publish` for stored results (each with a station), serialised straight from them."""
        if self.loop is None or not self.subscribers or not results:
            return
        forms = self._forms()
        frames = [(r.station.path, {f: result_frame(r, r.station.path, f) for f in forms})
                  for r in results if r.station is not None]
        self.loop.call_soon_threadsafe(self._stage, frames)
