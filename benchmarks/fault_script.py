"""Fault script (issue 9, Must show): the simulated line at 20 parts/s for 60 s against the results service
on PostgreSQL and a Mosquitto of its own, while it kills -9 the service, the broker and the runner in turn and
fills the outbox's disk; then it counts what was produced, stored, seen on MQTT, lost and duplicated.

    python benchmarks/fault_script.py                  # needs root (a 32 MB tmpfs for the outbox), PostgreSQL
    python benchmarks/fault_script.py --seconds 30     #   at 127.0.0.1:5432/test and the mosquitto binary

"produced" is every result the runner committed to its outbox (an SQLite trigger of this script records each
id, since delivered entries are pruned); "stored" is what the service holds for the station; "seen on MQTT"
is what a persistent QoS 1 subscriber received. Lost = produced but never stored (or never seen);
duplicated = an id stored twice (impossible by key, counted anyway) or received twice on MQTT (QoS 1 is at
least once: a duplicate there is allowed by the protocol, and counted). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))
from line_support import CLI, Mosquitto, ServiceProcess, Subscriber, free_port, line_status  # noqa: E402
from service_support import STATION  # noqa: E402

from inspection.line.outbox import Outbox  # noqa: E402
from inspection.model.shipped import default_model_path  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"
TRIGGER = """CREATE TABLE IF NOT EXISTS produced (inspection_id TEXT PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS record_produced AFTER INSERT ON outbox
BEGIN INSERT OR IGNORE INTO produced VALUES (NEW.inspection_id); END;"""


class CountingSubscriber(Subscriber):
    """The tests' persistent QoS 1 subscriber, also counting how often each id arrived."""

    def __init__(self, topic: str, client_id: str, port: int):
        super().__init__(topic, client_id, port)
        self.received: collections.Counter[str] = collections.Counter()

    def _on_message(self, _c, _u, msg):
        with self.lock:
            self.received[json.loads(msg.payload)["inspection_id"]] += 1


def log(t0: float, message: str) -> None:
    print(f"[{time.monotonic() - t0:5.1f} s] {message}", flush=True)


class Runner:
    """`inspection run` as a process that can be killed -9 and started again on the same outbox."""

    def __init__(self, config: Path, env: dict[str, str]):
        self.config, self.env = config, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([*CLI, "run", "--config", str(self.config), "--flush-timeout", "30"],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=90)
        return code


def mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"cannot mount a {size} tmpfs for the outbox (needs root): {done.stderr.strip()}")


def fill_disk(where: Path) -> Path:
    """Write zeros into ``where`` until the disk is full; returns the filler file."""
    filler = where / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while f.write(b"\0" * 4096):
                pass
        except OSError:  # ENOSPC: full to the last block
            pass
    return filler


def write_station(workdir: Path, outbox: Path, service: ServiceProcess, broker: Mosquitto, status: int,
                  rate: float) -> Path:
    site, area, line, cell, station = STATION.split("/")
    config = workdir / "station.toml"
    config.write_text(f'''outbox = "{outbox}"

[station]
site = "{site}"
area = "{area}"
line = "{line}"
cell = "{cell}"
station = "{station}"

[model]
path = "{default_model_path()}"

[source]
kind = "simulated"
rate = {rate}
defect_rate = 0.1

[images]
dir = "{workdir / "images"}"

[status]
port = {status}

[service]
url = "{service.url}"

[mqtt]
host = "127.0.0.1"
port = {broker.port}
topic_prefix = "fault"
''')
    return config


def _wait_running(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = line_status(port)
        if status and status.get("state") == "running":
            return
        time.sleep(0.1)
    raise RuntimeError("the runner did not reach state running")


def run_faults(seconds: float, service: ServiceProcess, broker: Mosquitto, runner: Runner, outbox_dir: Path,
               status_port: int) -> list[str]:
    """The fault timeline, spread over ``seconds``; returns what happened, one line each."""
    t0 = time.monotonic()
    events: list[str] = []

    def at(fraction: float) -> None:
        time.sleep(max(0.0, t0 + fraction * seconds - time.monotonic()))

    def note(message: str) -> None:
        events.append(f"{time.monotonic() - t0:5.1f} s  {message}")
        log(t0, message)

    runner.start()
    _wait_running(status_port)
    note("runner running")
    at(0.15)
    service.proc.kill()
    service.proc.wait()
    note("kill -9 results service")
    at(0.25)
    service.start()
    note("results service back")
    at(0.35)
    broker.proc.kill()
    broker.proc.wait()
    note("kill -9 mosquitto")
    at(0.45)
    broker.start()
    note("mosquitto back")
    at(0.55)
    runner.kill()
    note("kill -9 inspection run")
    runner.start()
    _wait_running(status_port)
    note("runner back")
    at(0.7)
    filler = fill_disk(outbox_dir)
    note(f"outbox disk filled ({filler.stat().st_size} bytes of filler)")
    at(0.78)
    state = line_status(status_port) or {}
    note(f"runner says state {state.get('state')!r}, error {state.get('error')!r}")
    at(0.8)
    filler.unlink()
    note("outbox disk space back")
    at(1.0)
    code = runner.stop()
    note(f"runner stopped (SIGTERM), exit {code}")
    return events


def count(outbox: Path, service: ServiceProcess, subscriber: CountingSubscriber, settle_s: float) -> dict:
    with sqlite3.connect(outbox) as conn:
        produced = {r[0] for r in conn.execute("SELECT inspection_id FROM produced")}
        pending = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    deadline = time.monotonic() + settle_s
    while True:  # the last MQTT messages and HTTP batches may still be in flight
        stored_list = service.ids()
        with subscriber.lock:
            seen = dict(subscriber.received)
        if (produced <= set(stored_list) and produced <= set(seen)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    stored = set(stored_list)
    return {"produced": len(produced), "stored": len(stored & produced), "seen_on_mqtt": len(produced & set(seen)),
            "lost_http": len(produced - stored), "lost_mqtt": len(produced - set(seen)),
            "duplicated_stored": len(stored_list) - len(stored),
            "duplicated_mqtt": sum(n - 1 for n in seen.values() if n > 1),
            "unknown_stored": len(stored - produced), "left_in_outbox": pending}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--tmpfs-size", default="32m")  # SQLite's WAL alone grows to 4 MB
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fault-script-"))
    schema = "fault_" + uuid.uuid4().hex[:8]
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    outbox_dir = work / "outbox-disk"
    mount_tmpfs(outbox_dir, args.tmpfs_size)
    service = ServiceProcess(work, f"{PG}?options=-csearch_path%3D{schema}")
    broker = Mosquitto(work / "broker")
    subscriber = CountingSubscriber(f"fault/{STATION}/inspection/result", f"fault-script-{os.getpid()}", 0)
    try:
        service.start()
        broker.start()
        subscriber.port = broker.port
        subscriber.start()
        outbox = outbox_dir / "outbox.db"
        Outbox(outbox).close()
        with sqlite3.connect(outbox) as conn:
            conn.executescript(TRIGGER)
        status_port = free_port()
        env = {**os.environ, "INSPECTION_SERVICE_TOKEN": service.edge, "INSPECTION_LOCK_DIR": str(work / "locks")}
        runner = Runner(write_station(work, outbox, service, broker, status_port, args.rate), env)
        events = run_faults(args.seconds, service, broker, runner, outbox_dir, status_port)
        figures = count(outbox, service, subscriber, settle_s=60)
    finally:
        subscriber.stop()
        service.stop()
        broker.stop()
        subprocess.run(["umount", "-l", str(outbox_dir)], check=False)
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": args.seconds,
              "rate": args.rate, "events": events, **figures}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "fault_script.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"produced {figures['produced']}, stored {figures['stored']}, seen on MQTT {figures['seen_on_mqtt']}, "
          f"lost {figures['lost_http']} (HTTP) / {figures['lost_mqtt']} (MQTT), duplicated "
          f"{figures['duplicated_stored']} (stored) / {figures['duplicated_mqtt']} (MQTT deliveries)")


if __name__ == "__main__":
    main()
