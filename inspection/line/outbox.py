"""The local outbox: every result is committed here first, then delivered (store-and-forward).

SQLite in WAL mode with ``synchronous=FULL``: a result whose commit returned survives a crash or power loss.
Each destination (``http``, ``mqtt``) has its own delivered flag; an entry is pruned once every enabled
destination has it. Entries a destination refuses for good (a 4xx that a retry cannot fix) are set aside
as ``rejected`` with the reason, so one poisoned result never blocks the rest.

One :class:`Outbox` per thread (sqlite3 connections are not shared between threads).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

DESTINATIONS = ("http", "mqtt")

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

PENDING, DELIVERED, REJECTED = 0, 1, 2


@dataclass
class Entry:
    seq: int
    inspection_id: str
    record: str
    original_path: str | None
    overlay_path: str | None
    created: float


class Outbox:
    def __init__(self, path: str | Path, enabled: tuple[str, ...] = DESTINATIONS):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.enabled = enabled
        self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        # a destination that is switched off counts as delivered, so its entries can be pruned
        for dest in DESTINATIONS:
            if dest not in enabled:
                self.db.execute(f"UPDATE outbox SET {dest}_state = {DELIVERED} WHERE {dest}_state = {PENDING}")

    def add(self, inspection_id: str, record: str, original: str | None = None, overlay: str | None = None) -> None:
        """Commit one result; when this returns, it is durable."""
        states = {d: (PENDING if d in self.enabled else DELIVERED) for d in DESTINATIONS}
        self.db.execute("INSERT OR IGNORE INTO outbox (inspection_id, record, original_path, overlay_path, created, "
                        "http_state, mqtt_state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (inspection_id, record, original, overlay, time.time(), states["http"], states["mqtt"]))

    def pending(self, dest: str, limit: int) -> list[Entry]:
        rows = self.db.execute(f"SELECT seq, inspection_id, record, original_path, overlay_path, created FROM outbox "
                               f"WHERE {dest}_state = {PENDING} ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [Entry(*r) for r in rows]

    def mark(self, dest: str, ids: list[str], state: int = DELIVERED, error: str | None = None) -> None:
        if not ids:
            return
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(f"UPDATE outbox SET {dest}_state = ?, {dest}_error = ? WHERE inspection_id = ?",
                            [(state, error, i) for i in ids])
        self.db.execute("COMMIT")

    def prune(self) -> int:
        """Drop entries every destination is done with (delivered or rejected)."""
        cur = self.db.execute(f"DELETE FROM outbox WHERE http_state != {PENDING} AND mqtt_state != {PENDING} "
                              f"AND http_state != {REJECTED} AND mqtt_state != {REJECTED}")
        return cur.rowcount

    def stats(self) -> dict:
        out = {}
        now = time.time()
        for dest in DESTINATIONS:
            depth, oldest = self.db.execute(f"SELECT COUNT(*), MIN(created) FROM outbox WHERE {dest}_state = "
                                            f"{PENDING}").fetchone()
            rejected = self.db.execute(f"SELECT COUNT(*) FROM outbox WHERE {dest}_state = {REJECTED}").fetchone()[0]
            out[dest] = {"depth": depth, "oldest_age_s": round(now - oldest, 3) if oldest else 0.0,
                         "rejected": rejected}
        return out

    def close(self) -> None:
        self.db.close()
