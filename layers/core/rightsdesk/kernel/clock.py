"""The one clock every rule reads.

In Lambda it is wall-clock UTC. The local runner (POST /_dev/clock) and the tests move it with
`advance` or `set_offset` so that deadlines, code expiry and retention can be exercised without
sleeping. Nothing else can move it: the offset is read from no environment variable and no stored
item, and no deployed code calls these two (tests/unit/test_clock_offset.py), so a deployed stage
always tells wall-clock time.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

_lock = threading.Lock()
_offset_seconds: float = 0.0


def now() -> datetime:
    """Current time in UTC, shifted by the injected offset."""
    return datetime.now(timezone.utc) + timedelta(seconds=_offset_seconds)


def epoch() -> int:
    return int(now().timestamp())


def offset_seconds() -> float:
    return _offset_seconds


def advance(seconds: float) -> datetime:
    """Move the clock forward (never backward: deadlines only ever pass)."""
    global _offset_seconds
    if seconds < 0:
        raise ValueError("the clock only moves forward")
    with _lock:
        _offset_seconds += seconds
    return now()


def set_offset(seconds: float) -> None:
    """Set the absolute offset; tests use it to restore a known state."""
    global _offset_seconds
    with _lock:
        _offset_seconds = float(seconds)


def isoformat(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
