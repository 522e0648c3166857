"""Shift boundaries: the start times of the day's shifts (``06:00,14:00,22:00``) in a time zone, and the
shift a moment lies in (its start and the next start), so counters reset at shift change."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def parse_shift_starts(text: str | tuple[str, ...] | list[str]) -> tuple[time, ...]:
    """``"06:00,14:00,22:00"`` (or a sequence of ``HH:MM`` or ``HH:MM:SS``) as sorted times; ValueError naming
    a bad entry."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    starts: set[time] = set()
    for raw in parts:
        item = raw.strip()
        try:
            fields = [int(x) for x in item.split(":")]
            if len(fields) not in (2, 3):
                raise ValueError(item)
            starts.add(time(fields[0], fields[1], fields[2] if len(fields) == 3 else 0))
        except ValueError:
            raise ValueError(f"shift start {item!r}: write HH:MM or HH:MM:SS (00:00 to 23:59:59), "
                             "e.g. 06:00,14:00,22:00") from None
    if not starts:
        raise ValueError("shift starts: give at least one HH:MM time, e.g. 06:00,14:00,22:00")
    return tuple(sorted(starts))


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"shift time zone {name!r} is not a known IANA zone (e.g. UTC, Europe/Berlin)") from None


def current_shift(now: datetime, starts: tuple[time, ...], zone: ZoneInfo) -> tuple[datetime, datetime]:
    """(start of the shift ``now`` lies in, start of the next one), both aware UTC."""
    local = now.astimezone(zone)
    boundaries = sorted(datetime.combine(local.date() + timedelta(days=d), t, tzinfo=zone)
                        for d in (-1, 0, 1) for t in starts)
    start = max(b for b in boundaries if b <= local)
    following = min(b for b in boundaries if b > local)
    return start.astimezone(UTC), following.astimezone(UTC)
