"""One retry step (rightsdesk.kernel.retry) for both queues: the n-th failure waits the n-th delay,
the last delay repeats, nothing waits zero or less."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsdesk.kernel.retry import RetrySchedule
from rightsdesk.outbound import notify
from rightsdesk.routing import delivery


@given(st.lists(st.integers(1, 12 * 3600), min_size=1, max_size=10), st.integers(-5, 50))
def test_the_nth_failure_waits_the_nth_delay_and_the_last_repeats(delays, attempt):
    schedule = RetrySchedule(tuple(delays))
    expected = delays[min(max(attempt, 1), len(delays)) - 1]
    assert schedule.delay(attempt) == expected


@pytest.mark.parametrize("delays", [(), (5, 0), (-1,)])
def test_a_schedule_without_positive_delays_is_refused(delays):
    with pytest.raises(ValueError):
        RetrySchedule(delays)


@pytest.mark.parametrize("queue", [delivery, notify])
def test_both_queues_step_through_the_one_schedule(queue):
    assert queue.retry_delay == queue.RETRY_SCHEDULE.delay
    assert queue.RETRY_SCHEDULE.delays_seconds == queue.RETRY_DELAYS_SECONDS
    last = len(queue.RETRY_DELAYS_SECONDS)
    assert [queue.retry_delay(n) for n in range(1, last + 3)] == [
        *queue.RETRY_DELAYS_SECONDS,
        *[queue.RETRY_DELAYS_SECONDS[-1]] * 2,
    ]
