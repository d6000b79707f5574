"""local/caller_first.py: moto's DynamoDB turns go to the calls a caller waits on first."""

from __future__ import annotations

import threading
import time

from local.caller_first import Turns


def _until(condition, what: str) -> None:
    """Wait for another thread to reach a state (not for an amount of time)."""
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.001)


def _take_and_note(turns: Turns, caller_waits: bool, name: str, order: list[str]) -> threading.Thread:
    def run() -> None:
        turns.take(caller_waits)
        order.append(name)
        turns.give_back()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_call_a_caller_waits_on_takes_the_next_turn_before_background_calls_that_came_first():
    turns, order = Turns(max_defer_seconds=30), []
    turns.take(caller_waits=False)  # a background call holds the turn
    first = _take_and_note(turns, False, "background", order)
    _until(lambda: turns.waiting() == (0, 1), "the background call waits")
    second = _take_and_note(turns, True, "caller", order)
    _until(lambda: turns.waiting() == (1, 1), "the caller's call waits")
    turns.give_back()
    for thread in (first, second):
        thread.join(timeout=5)
    assert order == ["caller", "background"]


def test_turns_are_taken_one_at_a_time():
    turns, inside, most = Turns(max_defer_seconds=0.001), [0], [0]
    guard = threading.Lock()

    def run(caller_waits: bool) -> None:
        for _ in range(200):
            turns.take(caller_waits)
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            with guard:
                inside[0] -= 1
            turns.give_back()

    threads = [threading.Thread(target=run, args=(n % 2 == 0,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most[0] == 1 and turns.waiting() == (0, 0)


def test_a_background_call_is_deferred_only_for_a_while_however_many_callers_keep_coming():
    turns, order = Turns(max_defer_seconds=0.01), []
    turns._callers_waiting = 1  # as if callers never stopped coming
    background = _take_and_note(turns, False, "background", order)
    background.join(timeout=5)
    assert order == ["background"], "the background call got its turn after its deferral"
