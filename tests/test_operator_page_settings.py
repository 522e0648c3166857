"""Operator-page settings: shift starts and their time zone (the shift a moment lies in, across midnight and a
daylight-saving change), and bad values refused at start with a message naming them."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
from line_support import CLI

from edge_service.settings import ServiceSettings
from edge_service.shifts import current_shift, parse_shift_starts, parse_zone

THREE = parse_shift_starts("06:00,14:00,22:00")


def _utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_the_shift_a_moment_lies_in():
    utc = parse_zone("UTC")
    assert current_shift(_utc(2026, 12, 1, 13, 59, 59), THREE, utc) == (_utc(2026, 12, 1, 6), _utc(2026, 12, 1, 14))
    assert current_shift(_utc(2026, 12, 1, 14), THREE, utc) == (_utc(2026, 12, 1, 14), _utc(2026, 12, 1, 22))
    assert current_shift(_utc(2026, 12, 2, 3), THREE, utc) == (_utc(2026, 12, 1, 22), _utc(2026, 12, 2, 6))
    berlin = parse_zone("Europe/Berlin")  # local 22:00 is 21:00 UTC in winter, 20:00 in summer
    assert current_shift(_utc(2026, 12, 1, 4), THREE, berlin) == (_utc(2026, 11, 30, 21), _utc(2026, 12, 1, 5))
    assert current_shift(_utc(2026, 7, 1, 3, 59), THREE, berlin) == (_utc(2026, 6, 30, 20), _utc(2026, 7, 1, 4))
    assert current_shift(_utc(2026, 7, 1, 4), THREE, berlin)[0] == _utc(2026, 7, 1, 4)  # 06:00 local
    # the night of the change to summer time (29 March 2026, 02:00 -> 03:00 local) is an hour shorter
    assert current_shift(_utc(2026, 3, 29, 2), THREE, berlin) == (_utc(2026, 3, 28, 21), _utc(2026, 3, 29, 4))
    assert parse_shift_starts(["14:00", " 06:00:30"]) == (parse_shift_starts("06:00:30")[0], THREE[1])


@pytest.mark.parametrize(("settings", "message"), [
    ({"shift_starts": "06:00,25:00"}, "shift start '25:00': write HH:MM"),
    ({"shift_starts": ""}, "shift start '': write HH:MM"),
    ({"shift_timezone": "Mars/Base"}, "shift time zone 'Mars/Base' is not a known IANA zone"),
    ({"fail_latch_seconds": -1}, "fail latch seconds must be >= 0"),
    ({"alarm_consecutive_fails": 0}, "alarm consecutive fails must be >= 1"),
    ({"kiosk_session_days": 0}, "kiosk session days must be > 0"),
])
def test_bad_settings_are_refused_by_name(settings, message):
    with pytest.raises(ValueError, match=message):
        ServiceSettings(**settings)


def test_serve_refuses_a_bad_shift_start_before_touching_anything(tmp_path):
    db = tmp_path / "r.db"
    res = subprocess.run([*CLI, "serve", "--shift-starts", "6h", "--database-url", f"sqlite:///{db}"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "shift start '6h'" in res.stderr
    assert not db.exists()

