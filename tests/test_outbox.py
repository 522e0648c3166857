"""The outbox: destinations checked against the fixed list (never pasted into SQL), rejected entries kept
and listed, re-queued with `inspection outbox retry`, and a poisoned batch split against the real service so
only the bad result is set aside."""

from __future__ import annotations

import json
import threading

import pytest
from service_support import make_result
from typer.testing import CliRunner

from inspection.cli import app
from inspection.line.forwarders import HttpForwarder
from inspection.line.outbox import DELIVERED, PENDING, REJECTED, Outbox


@pytest.mark.parametrize("dest", ["ftp", "http_state = 0; DROP TABLE outbox; --", ""])
def test_an_unknown_destination_is_refused_and_never_reaches_sql(tmp_path, dest):
    box = Outbox(tmp_path / "o.db")
    box.add("id0", "{}")
    for call in (lambda: box.pending(dest, 10), lambda: box.mark(dest, ["id0"]), lambda: box.rejected(dest),
                 lambda: box.retry(dest)):
        with pytest.raises(ValueError, match="unknown outbox destination"):
            call()
    with pytest.raises(ValueError, match="unknown outbox destination"):
        Outbox(tmp_path / "o.db", enabled=(dest,))
    assert [e.inspection_id for e in box.pending("http", 10)] == ["id0"]  # the table is untouched
    box.close()


def test_rejected_entries_are_kept_listed_and_requeued(tmp_path):
    path = tmp_path / "o.db"
    box = Outbox(path)
    for i in range(4):
        box.add(f"id{i}", "{}")
    box.mark("http", ["id0", "id1", "id2", "id3"])
    box.mark("mqtt", ["id0", "id1", "id3"])
    box.mark("http", ["id1"], REJECTED, "422: results.0.score: Field required")
    box.mark("mqtt", ["id2"], REJECTED, "too big")
    assert box.prune() == 2  # id0 and id3 are delivered everywhere; the rejected id1, id2 stay
    box.close()

    cli = CliRunner()
    res = cli.invoke(app, ["outbox", "list", "--outbox", str(path)])
    assert res.exit_code == 0, res.output
    rows = [line.split() for line in res.output.splitlines() if line.startswith("id")][1:]
    assert [(r[0], r[1]) for r in rows] == [("id1", "http"), ("id2", "mqtt")]
    assert "422: results.0.score: Field required" in res.output and "too big" in res.output
    assert "2 rejected" in res.output
    res = cli.invoke(app, ["outbox", "list", "--outbox", str(path), "--dest", "mqtt"])
    assert "id2" in res.output and "id1" not in res.output

    res = cli.invoke(app, ["outbox", "retry", "--outbox", str(path), "--dest", "http", "id1", "nope"])
    assert res.exit_code == 1 and "requeued id1 for http" in res.output and "nope" in res.output, res.output
    box = Outbox(path, prepare=False)
    assert [e.inspection_id for e in box.pending("http", 10)] == ["id1"]
    assert [(e.inspection_id, e.dest) for e in box.rejected()] == [("id2", "mqtt")]  # the other one stays
    box.close()
    res = cli.invoke(app, ["outbox", "retry", "--outbox", str(path)])
    assert res.exit_code == 0 and "requeued id2 for mqtt" in res.output and "1 requeued" in res.output
    assert "no rejected results" in cli.invoke(app, ["outbox", "list", "--outbox", str(path)]).output


def test_outbox_commands_name_what_is_wrong(tmp_path):
    cli = CliRunner()
    missing = tmp_path / "none.db"
    res = cli.invoke(app, ["outbox", "list", "--outbox", str(missing)])
    assert res.exit_code == 2 and "no such outbox file" in res.output and not missing.exists()
    (tmp_path / "junk.db").write_text("not a database")
    res = cli.invoke(app, ["outbox", "list", "--outbox", str(tmp_path / "junk.db")])
    assert res.exit_code == 2 and "not a usable outbox" in res.output
    Outbox(tmp_path / "o.db").close()
    res = cli.invoke(app, ["outbox", "retry", "--outbox", str(tmp_path / "o.db"), "--dest", "ftp"])
    assert res.exit_code == 2 and "--dest 'ftp'" in res.output


def _states(path) -> dict[str, tuple[int, str | None]]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return {r[0]: (r[1], r[2]) for r in db.execute("SELECT inspection_id, http_state, http_error FROM outbox")}
    finally:
        db.close()


def test_a_poisoned_batch_is_split_so_only_the_bad_result_is_set_aside(tmp_path, service_process):
    service = service_process
    path = tmp_path / "o.db"
    box = Outbox(path, enabled=("http",))
    good = [make_result() for _ in range(5)]
    bad = make_result()
    del bad["score"]  # the service refuses the whole batch with 422 naming the field
    records = [*good[:2], bad, *good[2:]]
    for r in records:
        box.add(r["inspection_id"], json.dumps(r))
    posts = []
    forwarder = HttpForwarder(path, service.url, service.edge, threading.Event(), batch=50)
    forwarder.client.event_hooks["request"].append(lambda req: posts.append(req.url.path))
    try:
        forwarder.deliver(box, box.pending("http", 50))
    finally:
        forwarder.client.close()
    stored = set(service.ids())
    assert stored == {r["inspection_id"] for r in good}  # everything else got through
    states = _states(path)
    assert states[bad["inspection_id"]][0] == REJECTED and "422" in (states[bad["inspection_id"]][1] or "")
    assert "score" in (states[bad["inspection_id"]][1] or "")
    assert all(states[r["inspection_id"]] == (DELIVERED, None) for r in good)
    assert posts.count("/api/v1/results") == 1 + len(records)  # the batch once, then one by one
    assert box.pending("http", 50) == [] and PENDING not in {s for s, _ in states.values()}
    box.close()
