"""The local outbox: every result is committed here first, then delivered (store-and-forward).

SQLite in WAL mode with ``synchronous=FULL``: a result whose commit returned survives a crash or power loss.
Each destination (``http``, ``mqtt``) has its own state: pending, delivered or rejected. An entry is pruned
once every destination has delivered it (a destination that is switched off counts as delivered). Entries a
destination refuses for good (a 4xx that a retry cannot fix) are set aside as rejected with the reason, so
one poisoned result never blocks the rest; they are kept, never pruned: ``inspection outbox list`` shows
them and ``inspection outbox retry`` puts them back in the queue.

The SQL is built once, here, from the fixed destination list; a destination name from outside is checked
against that list (ValueError) and never pasted into a statement. One :class:`Outbox` per thread (sqlite3
connections are not shared between threads).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DESTINATIONS = ("http", "mqtt")
PENDING, DELIVERED, REJECTED = 0, 1, 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    inspection_id TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    original_path TEXT,
    overlay_path TEXT,
    created REAL NOT NULL,
    http_state INTEGER NOT NULL DEFAULT 0,   -- 0 pending, 1 delivered, 2 rejected
    mqtt_state INTEGER NOT NULL DEFAULT 0,
    http_error TEXT,
    mqtt_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_http ON outbox (http_state, seq);
CREATE INDEX IF NOT EXISTS outbox_mqtt ON outbox (mqtt_state, seq);
"""


@dataclass(frozen=True)
class _Statements:
    """Every statement that names one destination's columns, built once from DESTINATIONS."""

    switch_off: str
    pending: str
    mark: str
    depth: str
    rejected_count: str
    rejected: str
    retry_ids: str


def _statements(dest: str) -> _Statements:
    state, error = f"{dest}_state", f"{dest}_error"
    return _Statements(
        switch_off=f"UPDATE outbox SET {state} = {DELIVERED} WHERE {state} = {PENDING}",
        pending=f"SELECT seq, inspection_id, record, original_path, overlay_path, created FROM outbox "
                f"WHERE {state} = {PENDING} ORDER BY seq LIMIT ?",
        mark=f"UPDATE outbox SET {state} = ?, {error} = ? WHERE inspection_id = ?",
        depth=f"SELECT COUNT(*), MIN(created) FROM outbox WHERE {state} = {PENDING}",
        rejected_count=f"SELECT COUNT(*) FROM outbox WHERE {state} = {REJECTED}",
        rejected=f"SELECT inspection_id, {error}, created FROM outbox WHERE {state} = {REJECTED} ORDER BY seq",
        retry_ids=f"UPDATE outbox SET {state} = {PENDING}, {error} = NULL WHERE {state} = {REJECTED} "
                  f"AND inspection_id = ?",
    )


_SQL = {dest: _statements(dest) for dest in DESTINATIONS}
_PRUNE = "DELETE FROM outbox WHERE " + " AND ".join(f"{d}_state = {DELIVERED}" for d in DESTINATIONS)
_INSERT = (f"INSERT OR IGNORE INTO outbox (inspection_id, record, original_path, overlay_path, created, "
           f"{', '.join(f'{d}_state' for d in DESTINATIONS)}) VALUES (?, ?, ?, ?, ?, "
           f"{', '.join('?' for _ in DESTINATIONS)})")


def _sql(dest: str) -> _Statements:
    try:
        return _SQL[dest]
    except KeyError:
        raise ValueError(f"unknown outbox destination {dest!r}: choose one of {', '.join(DESTINATIONS)}") from None


@dataclass
class Entry:
    seq: int
    inspection_id: str
    record: str
    original_path: str | None
    overlay_path: str | None
    created: float


@dataclass(frozen=True)
class RejectedEntry:
    """An entry a destination refused for good, with the reason it gave."""

    inspection_id: str
    dest: str
    error: str | None
    created: float

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.created


@dataclass(frozen=True)
class DestinationStats:
    depth: int
    oldest_age_s: float
    rejected: int


class Outbox:
    def __init__(self, path: str | Path, enabled: tuple[str, ...] = DESTINATIONS, prepare: bool = True):
        """``prepare``: create the file and schema and mark switched-off destinations delivered (a write);
        False only reads an existing outbox (status, ``inspection outbox list``)."""
        for dest in enabled:
            _sql(dest)
        self.path = Path(path)
        self.enabled = enabled
        if prepare:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such outbox file")
        self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        if prepare:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(_SCHEMA)
            for dest in DESTINATIONS:  # a switched-off destination counts as delivered, so entries can be pruned
                if dest not in enabled:
                    self.db.execute(_SQL[dest].switch_off)

    def add(self, inspection_id: str, record: str, original: str | None = None, overlay: str | None = None) -> None:
        """Commit one result; when this returns, it is durable."""
        states = [PENDING if d in self.enabled else DELIVERED for d in DESTINATIONS]
        try:
            self.db.execute(_INSERT, (inspection_id, record, original, overlay, time.time(), *states))
        except sqlite3.Error:
            if self.db.in_transaction:  # a full disk can leave the statement's transaction open
                self.db.rollback()
            raise

    def pending(self, dest: str, limit: int) -> list[Entry]:
        return [Entry(*r) for r in self.db.execute(_sql(dest).pending, (limit,)).fetchall()]

    def mark(self, dest: str, ids: Sequence[str], state: int = DELIVERED, error: str | None = None) -> None:
        sql = _sql(dest).mark
        if state not in (PENDING, DELIVERED, REJECTED):
            raise ValueError(f"unknown outbox state {state!r}")
        if not ids:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(sql, [(state, error, i) for i in ids])
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def prune(self) -> int:
        """Drop entries every destination has delivered; rejected ones are kept until retried."""
        return self.db.execute(_PRUNE).rowcount

    def stats(self) -> dict[str, DestinationStats]:
        out = {}
        now = time.time()
        for dest in DESTINATIONS:
            depth, oldest = self.db.execute(_SQL[dest].depth).fetchone()
            rejected = self.db.execute(_SQL[dest].rejected_count).fetchone()[0]
            out[dest] = DestinationStats(depth, round(now - oldest, 3) if oldest else 0.0, rejected)
        return out

    def rejected(self, dest: str | None = None) -> list[RejectedEntry]:
        """Entries set aside, oldest first (one per destination that refused it)."""
        dests = DESTINATIONS if dest is None else (dest,)
        out = [RejectedEntry(rid, d, error, created)
               for d in dests for rid, error, created in self.db.execute(_sql(d).rejected).fetchall()]
        return sorted(out, key=lambda e: e.created)

    def retry(self, dest: str | None = None, ids: Sequence[str] = ()) -> list[tuple[str, str]]:
        """Put rejected entries back in the queue (all, or only ``ids``); the (id, destination) pairs requeued."""
        dests = DESTINATIONS if dest is None else (dest,)
        chosen = [e for e in self.rejected(dest) if not ids or e.inspection_id in set(ids)]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for d in dests:
                todo = [(e.inspection_id,) for e in chosen if e.dest == d]
                self.db.executemany(_SQL[d].retry_ids, todo)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return [(e.inspection_id, e.dest) for e in chosen]

    def close(self) -> None:
        self.db.close()
