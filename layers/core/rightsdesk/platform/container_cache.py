"""Values a warm Lambda container keeps between invocations for a short, bounded time.

A Lambda container serves one invocation at a time and lives minutes to hours; what it remembers
saves a read per invocation. Only values that may be a little stale without harm belong here (a
controller's deadline setting, which controller a site belongs to); what security depends on is
read fresh by its caller (docs/decisions.md, "Fewer AWS calls"). An entry is used while it is
younger than its cache's `max_age` both on the wall clock of this process (time.monotonic) and on
rightsdesk.kernel.clock, so a test or the local runner that moves the injected clock on also
moves past the entry, and one that moves it back makes the entry too new to trust.

Every cache is forgotten at once by `forget_all` (a process pointed at another table: tests, the
CLI, the local runner), and one key by `forget`, after this process changed what it names.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from rightsdesk.kernel import clock

_V = TypeVar("_V")
_caches: list[ContainerCache] = []
_MISSING = object()


class ContainerCache(Generic[_V]):
    """Up to `size` values by key, each trusted for `max_age_seconds`; the oldest go first."""

    def __init__(self, name: str, *, max_age_seconds: float, size: int = 256) -> None:
        self.name = name
        self.max_age_seconds = max_age_seconds
        self.size = size
        self._entries: OrderedDict[str, tuple[float, float, _V]] = OrderedDict()
        self._lock = threading.Lock()
        _caches.append(self)

    def get(self, key: str, load: Callable[[], _V]) -> _V:
        """The value remembered for `key` if it is young enough, else `load()`'s, remembered unless
        it is None: something not found now may exist a moment later (a controller just registered)."""
        found = self._fresh(key)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        value = load()
        if value is None:
            return value
        with self._lock:
            self._entries[key] = (time.monotonic(), clock.now().timestamp(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def _fresh(self, key: str) -> object:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return _MISSING
        stored_monotonic, stored_clock, value = entry
        ages = (time.monotonic() - stored_monotonic, clock.now().timestamp() - stored_clock)
        if all(0 <= age < self.max_age_seconds for age in ages):
            return value
        return _MISSING

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def forget_all() -> None:
    """Forget every cached value of this process."""
    for cache in list(_caches):
        cache.clear()
