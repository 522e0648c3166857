"""Live feed under load (issue 9 item 9): bounded per-client queues, each event serialised once, a client too
far behind dropped with a counted reason, and every client that keeps up gets every event."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from service_support import STATION, make_result, station_server

from edge_service.api_models import LiveEvent
from edge_service.live import DROPPED, QUEUE_FULL, LiveFeed


def _event(station: str = STATION) -> LiveEvent:
    r = make_result(station=station)
    r["inspected_at"] = datetime.now(UTC)
    return LiveEvent.model_construct(**{**r, "inspection_id": uuid.UUID(r["inspection_id"])}, station_path=station)


def _dropped_count() -> float:
    return DROPPED.labels(reason=QUEUE_FULL)._value.get()


def test_slow_subscriber_is_dropped_with_a_reason_and_others_get_everything():
    async def scenario():
        feed = LiveFeed()
        feed.bind(asyncio.get_running_loop())
        slow = feed.subscribe(None, max_pending=3)
        keeping_up = feed.subscribe(None, max_pending=3)
        other_station = feed.subscribe("plant9", max_pending=3)
        got = []
        before = _dropped_count()
        for _ in range(5):
            feed.publish([_event()])
            await asyncio.sleep(0)  # the loop delivers
            got.append(b"".join(await keeping_up.take(1.0)))
        assert slow.dropped == QUEUE_FULL and slow not in feed.subscribers
        assert _dropped_count() == before + 1
        assert all(chunk.startswith(b"event: result\ndata: ") for chunk in got) and len(got) == 5
        assert keeping_up.dropped is None and other_station.dropped is None and not other_station.pending
        assert await slow.take(0.01) == []  # a dropped client's stream has nothing more

    asyncio.run(scenario())


def test_each_event_is_serialised_once_whatever_the_number_of_clients(monkeypatch):
    calls = []
    original = LiveEvent.model_dump_json

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LiveEvent, "model_dump_json", counting)

    async def scenario():
        feed = LiveFeed()
        feed.bind(asyncio.get_running_loop())
        subs = [feed.subscribe(None) for _ in range(50)]
        feed.publish([_event() for _ in range(4)])
        await asyncio.sleep(0)
        assert all(s.pending_events == 4 and s.pending[0].count(b"event: result") == 4 for s in subs)

    asyncio.run(scenario())
    assert len(calls) == 4


@pytest.fixture
def server(tmp_path):
    with station_server(tmp_path) as srv:
        yield srv


def test_a_client_that_goes_away_is_unsubscribed(server):
    feed = server.app.state.feed
    with httpx.stream("GET", f"{server.url}/api/v1/stream", timeout=30,
                      headers={"Authorization": f"Bearer {server.tokens['operator']}"}) as res:
        assert next(res.iter_lines()) == ": connected"
    deadline = time.monotonic() + 10  # well before the 15 s keep-alive would find out
    while feed.subscribers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not feed.subscribers, "a closed stream stayed subscribed"


def test_every_client_that_keeps_up_gets_every_event(server):
    clients, batches, per_batch = 20, 10, 50
    seen = [set() for _ in range(clients)]
    connected = threading.Barrier(clients + 1, timeout=30)
    done = threading.Event()

    def read(mine: set):
        with httpx.stream("GET", f"{server.url}/api/v1/stream", params={"max_seconds": 60},
                          headers={"Authorization": f"Bearer {server.tokens['operator']}"}, timeout=70) as res:
            for line in res.iter_lines():
                if line == ": connected":
                    connected.wait()
                elif line.startswith("data: "):
                    mine.add(json.loads(line[6:])["inspection_id"])
                    if len(mine) == batches * per_batch or done.is_set():
                        return

    readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in seen]
    for t in readers:
        t.start()
    connected.wait()
    sent = set()
    for _ in range(batches):
        batch = [make_result() for _ in range(per_batch)]
        res = httpx.post(f"{server.url}/api/v1/results", json={"results": batch},
                         headers={"Authorization": f"Bearer {server.tokens['edge']}"}, timeout=30)
        assert res.status_code == 200, res.text
        sent |= {r["inspection_id"] for r in batch}
    for t in readers:
        t.join(timeout=60)
    done.set()
    assert [len(s & sent) for s in seen] == [len(sent)] * clients


def test_a_stored_result_is_framed_exactly_as_its_live_event():
    from edge_service.ingest_rules import IngestResult
    from edge_service.live import result_frame, sse_frame

    for verdict in ("PASS", "FAIL"):
        r = IngestResult.model_validate(make_result(verdict=verdict, score=0.9 if verdict == "FAIL" else 0.1))
        event = LiveEvent.model_construct(**dict(r), station_path=r.station.path)
        assert result_frame(r, r.station.path) == sse_frame(event)
        assert json.loads(result_frame(r, r.station.path)[len(b"event: result\ndata: "):])["station_path"] == STATION
