"""Two calls at once (rightsdesk.platform.overlap): both answers, the caller's error first, nothing left running."""

from __future__ import annotations

import contextvars
import threading

import pytest

from local import faults
from rightsdesk.platform import overlap

invocation: contextvars.ContextVar[str | None] = contextvars.ContextVar("invocation", default=None)


class First(Exception):
    pass


class Second(Exception):
    pass


def test_both_answers_come_back_in_order_and_the_second_ran_on_another_thread():
    here = threading.get_ident()
    assert overlap.both(lambda: threading.get_ident(), lambda: threading.get_ident())[0] == here
    assert overlap.both(lambda: threading.get_ident(), lambda: threading.get_ident())[1] != here
    assert overlap.both(lambda: "request", lambda: 5) == ("request", 5)


def test_the_first_error_wins_and_the_second_call_has_finished_when_it_is_raised():
    started, finished = threading.Event(), threading.Event()

    def slow_second():
        started.set()
        finished.wait(timeout=5)
        return "done"

    def failing_first():
        started.wait(timeout=5)
        finished.set()
        raise First()

    def failing_second():
        raise Second()

    with pytest.raises(First):
        overlap.both(failing_first, slow_second)
    assert finished.is_set()
    with pytest.raises(First):
        overlap.both(lambda: (_ for _ in ()).throw(First()), failing_second)
    with pytest.raises(Second):
        overlap.both(lambda: "fine", failing_second)


def test_a_crash_the_runner_injects_on_the_second_call_is_not_swallowed():
    """A BaseException (the local runner's injected crash) still ends the invocation."""

    def crash():
        raise faults.InjectedCrash("died")

    with pytest.raises(faults.InjectedCrash):
        overlap.both(lambda: "fine", crash)


def test_the_second_call_sees_the_invocations_context():
    token = invocation.set("PublicApiFunction")
    try:
        assert overlap.both(invocation.get, invocation.get) == ("PublicApiFunction", "PublicApiFunction")
        with faults.running("DispatcherFunction"):
            assert overlap.both(faults.current_function, faults.current_function) == (
                "DispatcherFunction",
                "DispatcherFunction",
            )
    finally:
        invocation.reset(token)
    assert overlap.both(faults.current_function, faults.current_function) == (None, None)
