"""Two runners, one station (issue 9 item 13): a station lock file held while `inspection run` runs; a second
runner of the same station on the box refuses to start (exit 2, the station and the holder named); the MQTT
client id names the box."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading

import pytest
from line_support import CLI, STATION, wait_for, write_config

from inspection.line.forwarders import MqttForwarder
from inspection.line.station_lock import StationBusy, StationLock, lock_path
from inspection.schema import StationContext


def test_a_taken_station_lock_refuses_and_frees_on_release(tmp_path):
    first = StationLock(STATION, tmp_path)
    first.acquire()
    assert lock_path(STATION, tmp_path).read_text().strip() == str(os.getpid())
    with pytest.raises(StationBusy, match=f"station {STATION} is already run.*pid {os.getpid()}"):
        StationLock(STATION, tmp_path).acquire()
    with StationLock("plant1/area1/line1/cell1/other", tmp_path):  # another station: its own lock
        pass
    first.release()
    with StationLock(STATION, tmp_path):  # free again
        pass


def _env(lock_dir) -> dict:
    return {**os.environ, "INSPECTION_LOCK_DIR": str(lock_dir)}


def test_second_runner_of_a_station_refuses_to_start(tmp_path):
    locks = tmp_path / "locks"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first_cfg = write_config(tmp_path / "a" / "station.toml", 'kind = "simulated"\nrate = 5')
    second_cfg = write_config(tmp_path / "b" / "station.toml", 'kind = "simulated"\nrate = 5')  # its own outbox
    first = subprocess.Popen([*CLI, "run", "--config", str(first_cfg)], env=_env(locks),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = threading.Event()

        def watch():
            for line in first.stdout:
                if line.startswith(f"station {STATION}"):
                    started.set()

        threading.Thread(target=watch, daemon=True).start()
        assert started.wait(60), "the first runner did not start"
        second = subprocess.run([*CLI, "run", "--config", str(second_cfg), "--duration", "5"], env=_env(locks),
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        assert f"station {STATION} is already run" in second.stderr and f"pid {first.pid}" in second.stderr
        assert not (tmp_path / "b" / "outbox.db").exists()  # refused before it opened anything
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    wait_for(lambda: first.poll() is not None, 10, "the first runner to end")
    again = subprocess.run([*CLI, "run", "--config", str(second_cfg), "--duration", "1"], env=_env(locks),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr


def test_mqtt_client_id_names_the_box(tmp_path):
    forwarder = MqttForwarder(tmp_path / "o.db", "127.0.0.1", 1, "test", StationContext.from_path(STATION),
                              threading.Event())
    client_id = forwarder.client._client_id.decode()
    assert client_id == f"inspection-{socket.gethostname()}-{STATION}"
