"""Failed-attempt counters that stop guessing, per source address and time window.

Each source gets one item per 15-minute window counting its failed attempts (a wrong or missing
status token, an unknown request id); at MAX_FAILURES it is refused with 429 until the window
ends, before anything is compared. The source is an IP address, which is personal data: only its
keyed hash is stored, and the item expires with its window. Reads look at the current window
only, so an expired item DynamoDB has not deleted yet counts for nothing.

A status token has 256 random bits: the counter is not what keeps it secret, it keeps guessers
from costing reads and filling logs. There is no per-request lock on purpose: anyone who learned
a request id could otherwise lock its subject out of their own request.
"""

from __future__ import annotations

from datetime import datetime

from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import TooManyAttempts
from rightsdesk.platform import hashing
from rightsdesk.store.items.limits import GuardItem

WINDOW_SECONDS = 15 * 60
MAX_FAILURES = 20
STATUS_TOKEN = "status_token"


def _keys(kind: str, source: str, now: datetime) -> tuple[str, str, int]:
    start = int(now.timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS
    return f"GUARD#{kind}#{hashing.keyed_hash('source', source)}", f"WINDOW#{start}", start + WINDOW_SECONDS


def refuse_if_locked(kind: str, source: str | None) -> None:
    """Raise TooManyAttempts if `source` used up its failures in the current window."""
    if not source:
        return
    pk, sk, _ = _keys(kind, source, clock.now())
    try:
        item = GuardItem.get(pk, sk)
    except GuardItem.DoesNotExist:
        return
    if int(item.failures or 0) >= MAX_FAILURES:
        raise TooManyAttempts(f"too many failed attempts; try again in {WINDOW_SECONDS // 60} minutes")


def count_failure(kind: str, source: str | None) -> None:
    if not source:
        return
    pk, sk, window_end = _keys(kind, source, clock.now())
    GuardItem(pk, sk).update(actions=[GuardItem.failures.add(1), GuardItem.expires_at.set(window_end)])
