"""Two independent AWS calls of one invocation, made at the same time: the caller waits for the
slower of the two, not for their sum.

A warm container serves one invocation at a time, and while a call waits on the network the
invocation holds the container (and is billed) for nothing. botocore clients are thread-safe (a
pynamodb connection holds one client), so the second call runs on a worker thread that lives as
long as the container. It runs in a copy of the caller's context (contextvars), so whatever the
invocation keeps there holds for both calls.

Both calls have finished when `both` returns or raises: no call outlives the invocation that made
it (Lambda freezes a container between invocations, and a call frozen half-way would land in a
later one).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_A = TypeVar("_A")
_B = TypeVar("_B")

_worker: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _worker
    if _worker is None:
        # One thread: an invocation overlaps two calls at a time, never more.
        _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="overlap")
    return _worker


def both(first: Callable[[], _A], second: Callable[[], _B]) -> tuple[_A, _B]:
    """Run `first` here and `second` on the worker, and answer both results. If either raises, the
    error is raised once both are done: `first`'s if it raised, else `second`'s, so a caller sees
    the error it would have seen had it called them in this order (minus the short cut: `second`
    has been made even when `first` failed, so only pair calls for which that is harmless)."""
    pending = _pool().submit(contextvars.copy_context().run, second)
    try:
        first_result = first()
    except BaseException:
        _wait_quietly(pending)
        raise
    return first_result, pending.result()


def _wait_quietly(pending) -> None:
    try:
        pending.result()
    except BaseException:  # noqa: BLE001 - the first call's error is the one the caller sees
        pass
