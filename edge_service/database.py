"""Tables, engine and migrations. SQLite (WAL) is the embedded default; PostgreSQL through psycopg 3 by URL.

Times are stored as naive UTC everywhere (portable between the two databases) and given out with UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)

metadata = MetaData()

stations = Table(
    "stations", metadata,
    Column("path", String(330), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("area", String(64), nullable=False),
    Column("line", String(64), nullable=False),
    Column("cell", String(64), nullable=False),
    Column("station", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

results = Table(
    "results", metadata,
    Column("inspection_id", String(36), primary_key=True),
    Column("station_path", String(330), nullable=False),
    Column("part_id", String(128)),
    Column("verdict", String(4), nullable=False),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("model_sha256", String(64), nullable=False),
    Column("schema_version", String(8), nullable=False),
    Column("captured_at", DateTime),
    Column("inspected_at", DateTime, nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("review_state", String(16), nullable=False, server_default="unreviewed"),
    Column("defect_class", String(64)),
    Column("record", Text, nullable=False),  # the result JSON as received (validated)
    Index("ix_results_time", "inspected_at", "inspection_id"),
    Index("ix_results_station_time", "station_path", "inspected_at"),
)

reviews = Table(
    "reviews", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("inspection_id", String(36), nullable=False, index=True),
    Column("decision", String(16), nullable=False),
    Column("defect_class", String(64)),
    Column("comment", Text),
    Column("reviewer", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

images = Table(
    "images", metadata,
    Column("inspection_id", String(36), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("file_name", String(128), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False, index=True),
)

tokens = Table(
    "api_tokens", metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("station_prefix", String(330)),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)

# QA workstation (migration 0002): per-station defect classes, the station's assignment (model version and
# threshold the line runner polls) and the audit log of every QA change.
defect_classes = Table(
    "defect_classes", metadata,
    Column("station_prefix", String(330), primary_key=True),
    Column("name", String(64), primary_key=True),
)

station_assignments = Table(
    "station_assignments", metadata,
    Column("station_path", String(330), primary_key=True),
    Column("model_version", String(64)),
    Column("threshold", Float),  # null: the model's own (migration 0003)
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("model_name", String(64)),
    Column("model_sha256", String(64)),
    Column("shadow_model_name", String(64)),
    Column("shadow_model_version", String(64)),
    Column("previous", Text),  # JSON list of the earlier assignments, newest first (rollback pops one)
)

# Models on the service (migration 0003_models): one row per uploaded name + version; the file itself is kept
# as <model dir>/<sha256>.onnx. card: the model's inspection.* metadata as JSON.
models = Table(
    "models", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    Column("size_bytes", BigInteger, nullable=False),
    Column("preset", String(32)),
    Column("card", Text, nullable=False),
    Column("uploaded_by", String(128), nullable=False),
    Column("uploaded_at", DateTime, nullable=False, index=True),
    Column("note", Text),
    UniqueConstraint("name", "version", name="uq_models_name_version"),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(330), nullable=False),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("reason", Text),
)

# Kiosk logins of the operator page (migration 0004_kiosk_sessions): a cookie holds ``secret``; only its SHA-256
# is stored. A session reads only what the operator page needs and dies with its token.
kiosk_sessions = Table(
    "kiosk_sessions", metadata,
    Column("id", String(16), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("token_id", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def as_utc(t: datetime) -> datetime:
    """A time read from the database (naive UTC) as an aware UTC time."""
    return t.replace(tzinfo=UTC)


def as_utc_naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def normalise_url(url: str) -> str:
    """Accept postgresql:// and postgres:// and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL: readers never block the writer
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # No pre-ping: it cost more than half the ingest throughput (measured: 3.6k vs 7.8k results/s on
    # PostgreSQL). After an outage the first request on a dead connection fails with 503 (the sender retries)
    # and SQLAlchemy invalidates the whole pool on that disconnect, so the next requests reconnect.
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=False)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (keeps the data)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class DatabaseUnavailable(RuntimeError):
    pass


def prepare(engine: Engine) -> Engine:
    """Check the database answers (DatabaseUnavailable with a clear message if not), then migrate it."""
    try:
        ping(engine)
    except Exception as exc:
        raise DatabaseUnavailable(f"cannot reach the database at {engine.url.render_as_string()}: "
                                  f"{str(exc).splitlines()[0]}") from None
    upgrade(engine)
    return engine


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
