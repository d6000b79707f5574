from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from rightsdesk.deadlines import add_calendar_months, due_at, latest_extension

UTC = timezone.utc


def at(y, m, d, h=12):
    return datetime(y, m, d, h, tzinfo=UTC)


def test_one_calendar_month_by_default():
    assert due_at(at(2026, 3, 10), request_type="access") == at(2026, 4, 10)


def test_month_end_clamps_to_the_shorter_month():
    assert due_at(at(2026, 1, 31), request_type="erasure") == at(2026, 2, 28)
    assert due_at(at(2028, 1, 31), request_type="erasure") == at(2028, 2, 29)  # leap year


def test_december_rolls_into_the_next_year():
    assert due_at(at(2026, 12, 15), request_type="access") == at(2027, 1, 15)


def test_a_controllers_shorter_promise_wins():
    assert due_at(at(2026, 3, 10), request_type="access", sla_days=14) == at(2026, 3, 24)
    # a promise longer than the law is capped by the law
    assert due_at(at(2026, 3, 10), request_type="access", sla_days=60) == at(2026, 4, 10)


def test_guardian_erasure_of_a_minor_is_due_in_72_hours():
    start = at(2026, 3, 10)
    assert due_at(start, request_type="erasure", relationship="guardian") == start + timedelta(hours=72)
    assert due_at(start, request_type="access", relationship="guardian") == at(2026, 4, 10)


def test_extension_is_capped_at_two_more_months():
    assert latest_extension(at(2026, 11, 30)) == at(2027, 2, 28)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       st.integers(min_value=0, max_value=36))
def test_adding_months_never_goes_backwards_and_lands_in_the_right_month(start, months):
    result = add_calendar_months(start, months)
    assert result >= start
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == months
    assert result.day <= start.day
