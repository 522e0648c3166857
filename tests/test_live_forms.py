"""The live stream's two forms (``fields=full`` and ``fields=slim``) and its flush interval under load: a slim
event holds exactly the LiveEventSlim fields, framed byte for byte as that model would be; a client that
keeps up gets every event of its form in the order stored; heavy load is flushed less often, and nothing is
lost while the interval grows or shrinks."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest
from service_support import STATION, make_result, station_server

from edge_service.api_models import LiveEvent, LiveEventSlim
from edge_service.ingest_rules import IngestResult
from edge_service.live import LiveFeed, result_frame, sse_frame

PREFIX = b"event: result\ndata: "


def _with_region() -> dict:
    r = make_result(verdict="FAIL", score=0.8, part_id="P-7")
    r["regions"] = [{"x": 10, "y": 20, "width": 30, "height": 40, "area_px": 900, "peak_score": 0.8}]
    return r


def _data(frame: bytes) -> bytes:
    assert frame.startswith(PREFIX) and frame.endswith(b"\n\n"), frame
    return frame[len(PREFIX):-2]


def test_a_slim_frame_is_the_slim_event_byte_for_byte_with_only_its_fields():
    for raw in (make_result(), _with_region()):
        r = IngestResult.model_validate(raw)
        slim = LiveEventSlim.model_validate({**raw, "station_path": STATION})
        frame = result_frame(r, r.station.path, "slim")
        assert _data(frame) == slim.model_dump_json().encode()
        event = LiveEvent.model_validate({**raw, "station_path": STATION})
        assert sse_frame(event, "slim") == frame  # a LiveEvent published in slim form: the same bytes
        body = json.loads(_data(frame))
        assert list(body) == list(LiveEventSlim.model_fields)
        assert body["station_path"] == STATION and body["inspection_id"] == raw["inspection_id"]
        assert body["regions"] == raw["regions"] and body["part_id"] == raw["part_id"]
        assert "model" not in body and "timings" not in body and "station" not in body
        assert len(frame) < 0.5 * len(result_frame(r, r.station.path, "full"))


@pytest.fixture
def server(tmp_path):
    with station_server(tmp_path) as srv:
        yield srv


def _reader(server, fields: str | None, got: list[dict], connected: threading.Barrier, expect: int):
    params = {"max_seconds": 60} | ({"fields": fields} if fields else {})
    with httpx.stream("GET", f"{server.url}/api/v1/stream", params=params, timeout=70,
                      headers={"Authorization": f"Bearer {server.tokens['operator']}"}) as res:
        assert res.status_code == 200
        for line in res.iter_lines():
            if line == ": connected":
                connected.wait()
            elif line.startswith("data: "):
                got.append(json.loads(line[6:]))
                if len(got) == expect:
                    return


def test_each_client_gets_every_event_of_its_form_in_the_order_stored(server):
    batches = [[make_result() for _ in range(40)] + [_with_region()] for _ in range(6)]
    sent = [r["inspection_id"] for batch in batches for r in batch]
    forms = ["slim", "slim", "full", None]  # None: the default, full
    got: list[list[dict]] = [[] for _ in forms]
    connected = threading.Barrier(len(forms) + 1, timeout=30)
    readers = [threading.Thread(target=_reader, args=(server, f, g, connected, len(sent)), daemon=True)
               for f, g in zip(forms, got, strict=True)]
    for t in readers:
        t.start()
    connected.wait()
    for batch in batches:
        res = httpx.post(f"{server.url}/api/v1/results", json={"results": batch}, timeout=30,
                         headers={"Authorization": f"Bearer {server.tokens['edge']}"})
        assert res.status_code == 200, res.text
    for t in readers:
        t.join(timeout=60)
    for form, events in zip(forms, got, strict=True):
        assert [e["inspection_id"] for e in events] == sent, f"{form}: {len(events)} of {len(sent)} or out of order"
        fields = LiveEventSlim.model_fields if form == "slim" else LiveEvent.model_fields
        assert all(list(e) == list(fields) for e in events), form
    assert got[0] == got[1] and got[2] == got[3]
    assert got[0][40]["regions"][0]["width"] == 30 and got[2][40]["model"]["name"] == "demo"


def test_an_unknown_form_is_refused_naming_the_parameter(server):
    res = httpx.get(f"{server.url}/api/v1/stream", params={"fields": "everything"},
                    headers={"Authorization": f"Bearer {server.tokens['operator']}"})
    assert res.status_code == 422 and "fields" in res.text


def _stored(n: int) -> list[IngestResult]:
    return [IngestResult.model_validate(make_result()) for _ in range(n)]


def test_busy_flushes_stretch_the_interval_and_a_quiet_one_resets_it_without_losing_events():
    async def scenario():
        feed = LiveFeed(flush_s=0.01, max_flush_s=0.04, busy_events=10)
        feed.bind(asyncio.get_running_loop())
        slim, full = feed.subscribe(None, fields="slim"), feed.subscribe(None)
        sent, intervals = [], []
        for n in (12, 12, 12, 12, 3, 12):  # busy four times (0.02, 0.04, 0.04 capped), then quiet, then busy
            batch = _stored(n)
            sent += [str(r.inspection_id) for r in batch]
            feed.publish_results(batch)
            await asyncio.sleep(0.06)  # longer than any interval: each batch is its own flush
            intervals.append(feed.interval)
        assert intervals == [0.02, 0.04, 0.04, 0.04, 0.01, 0.02]
        for sub in (slim, full):
            chunk = b"".join(await sub.take(0.1))
            ids = [json.loads(_data(f + b"\n\n"))["inspection_id"] for f in chunk.split(b"\n\n") if f]
            assert ids == sent and sub.dropped is None

    asyncio.run(scenario())


def test_a_form_nobody_asked_for_is_not_serialised(monkeypatch):
    calls: list[object] = []
    original = IngestResult.model_dump_json

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("include"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(IngestResult, "model_dump_json", counting)

    async def scenario():
        feed = LiveFeed()
        feed.bind(asyncio.get_running_loop())
        subs = [feed.subscribe(None, fields="slim") for _ in range(30)]
        feed.publish_results(_stored(5))
        await asyncio.sleep(0)
        assert all(s.pending_events == 5 for s in subs)

    asyncio.run(scenario())
    assert len(calls) == 5 and all(c is not None for c in calls)  # slim only, once per event
