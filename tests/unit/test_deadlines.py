import calendar
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rightsdesk.kernel import deadlines
from rightsdesk.kernel.deadline_state import is_overdue
from rightsdesk.kernel.deadlines import END_OF_DAY, add_calendar_months, due_at, latest_extension

UTC = timezone.utc


def at(y, m, d, h=12):
    return datetime(y, m, d, h, tzinfo=UTC)


def end_of(y, m, d):
    """The last instant of that UTC day: where a period of Regulation 1182/71 Art. 3 ends."""
    return datetime(y, m, d, 23, 59, 59, 999999, tzinfo=UTC)


def test_one_calendar_month_by_default_to_the_end_of_the_day():
    assert due_at(at(2026, 3, 10), request_type="access") == end_of(2026, 4, 10)
    # whenever on 10 March it was verified: the day it runs from does not count
    assert due_at(datetime(2026, 3, 10, 0, 0, tzinfo=UTC), request_type="access") == end_of(2026, 4, 10)
    assert due_at(datetime(2026, 3, 10, 23, 59, 59, 999999, tzinfo=UTC), request_type="access") == end_of(2026, 4, 10)
    assert due_at(datetime(2026, 3, 11, tzinfo=UTC), request_type="access") == end_of(2026, 4, 11)


def test_month_end_clamps_to_the_end_of_the_shorter_month():
    assert due_at(at(2026, 1, 31), request_type="erasure") == end_of(2026, 2, 28)
    assert due_at(at(2028, 1, 31), request_type="erasure") == end_of(2028, 2, 29)  # leap year
    assert due_at(at(2026, 3, 31), request_type="access") == end_of(2026, 4, 30)


def test_december_rolls_into_the_next_year():
    assert due_at(at(2026, 12, 15), request_type="access") == end_of(2027, 1, 15)


def test_a_controllers_shorter_promise_wins_and_ends_at_the_end_of_its_day_too():
    assert due_at(at(2026, 3, 10), request_type="access", sla_days=14) == end_of(2026, 3, 24)
    assert due_at(datetime(2026, 3, 10, 0, 1, tzinfo=UTC), request_type="access", sla_days=1) == end_of(2026, 3, 11)
    # a promise longer than the law is capped by the law
    assert due_at(at(2026, 3, 10), request_type="access", sla_days=60) == end_of(2026, 4, 10)
    # 30 days from 31 January is 2 March, after the month's end on 28 February
    assert due_at(at(2026, 1, 31), request_type="access", sla_days=30) == end_of(2026, 2, 28)


def test_guardian_erasure_of_a_minor_is_due_in_72_hours_exactly():
    """Our urgency rule, not a legal period: hours, not the end of a day."""
    start = at(2026, 3, 10)
    assert due_at(start, request_type="erasure", relationship="guardian") == start + timedelta(hours=72)
    assert due_at(start, request_type="access", relationship="guardian") == end_of(2026, 4, 10)


def test_extension_is_capped_at_the_end_of_the_day_two_more_months_later():
    assert latest_extension(at(2026, 11, 30)) == end_of(2027, 2, 28)
    assert latest_extension(at(2026, 3, 10)) == end_of(2026, 6, 10)


def test_weekends_and_holidays_do_not_extend_a_period():
    """Art. 3(4) would move a period ending on a Saturday, Sunday or public holiday to the next
    working day; we keep no holiday calendar per member state and end on the calendar day (earlier,
    never later). 1 May 2027 is a Saturday and a public holiday in Germany and Slovenia."""
    assert datetime(2027, 5, 1).weekday() == 5
    assert due_at(at(2027, 4, 1), request_type="access") == end_of(2027, 5, 1)
    assert due_at(at(2026, 11, 25), request_type="access") == end_of(2026, 12, 25)  # Christmas


def test_overdue_from_the_first_instant_of_the_next_day():
    due = due_at(at(2026, 3, 10), request_type="access")
    assert not is_overdue("verified", due, datetime(2026, 4, 10, 23, 59, 59, 999999, tzinfo=UTC))
    assert is_overdue("verified", due, datetime(2026, 4, 11, tzinfo=UTC))


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=0, max_value=36),
)
def test_adding_months_never_goes_backwards_and_lands_in_the_right_month(start, months):
    result = add_calendar_months(start, months)
    assert result >= start
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == months
    assert result.day <= start.day


# ------------------------------------------------------------------ properties: month ends, leap years, time zones

from zoneinfo import ZoneInfo  # noqa: E402 - the property tests' own imports, kept with them

from rightsdesk.routing.deadline_watch import notice_for  # noqa: E402

ZONES = st.sampled_from(
    [
        UTC,
        ZoneInfo("Europe/Ljubljana"),
        ZoneInfo("Europe/Berlin"),
        ZoneInfo("America/New_York"),
        ZoneInfo("Pacific/Kiritimati"),
        ZoneInfo("Pacific/Pago_Pago"),
        ZoneInfo("Asia/Kathmandu"),
    ]
)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC))
# Month ends and the days around 29 February are where calendar arithmetic goes wrong.
edge_days = st.builds(
    lambda year, month, back, hour: (
        datetime(year, month, calendar.monthrange(year, month)[1], hour, tzinfo=UTC) - timedelta(days=back)
    ),
    st.integers(2000, 2099),
    st.integers(1, 12),
    st.integers(0, 3),
    st.integers(0, 23),
)
starts = st.one_of(instants, edge_days)
kinds = st.sampled_from([("access", "self"), ("erasure", "self"), ("erasure", "guardian"), ("portability", "agent")])
slas = st.one_of(st.none(), st.integers(min_value=1, max_value=31))


@given(starts, ZONES, kinds, slas)
def test_the_due_date_depends_on_the_instant_not_on_the_zone_it_is_written_in(start, zone, kind, sla):
    request_type, relationship = kind
    in_utc = due_at(start, request_type=request_type, relationship=relationship, sla_days=sla)
    elsewhere = due_at(start.astimezone(zone), request_type=request_type, relationship=relationship, sla_days=sla)
    assert elsewhere == in_utc
    assert latest_extension(start.astimezone(zone)) == latest_extension(start)


@given(starts)
def test_one_month_is_the_same_day_next_month_clamped_to_its_end_at_the_end_of_the_day(start):
    due = due_at(start, request_type="access")
    next_month = (start.month % 12) + 1
    assert (due.year, due.month) == (start.year + (start.month == 12), next_month)
    assert due.day == min(start.day, calendar.monthrange(due.year, due.month)[1])
    assert due.time() == END_OF_DAY and due.utcoffset() == timedelta(0)
    assert timedelta(days=28) < due - start < timedelta(days=32)


@given(starts, kinds, slas)
def test_every_legal_period_ends_at_the_end_of_a_utc_day_and_only_guardian_erasure_counts_hours(start, kind, sla):
    request_type, relationship = kind
    due = due_at(start, request_type=request_type, relationship=relationship, sla_days=sla)
    if kind == ("erasure", "guardian"):
        assert due - start == timedelta(hours=72)
    else:
        assert due.time() == END_OF_DAY and due.utcoffset() == timedelta(0)
        assert due.date() > start.date(), "the day it runs from does not count"
        if sla:
            assert (due.date() - start.date()).days <= sla
    cap = latest_extension(start)
    assert cap.time() == END_OF_DAY and cap.date() == add_calendar_months(start, 3).date()


@given(st.integers(2000, 2099))
def test_leap_days(year):
    leap = calendar.isleap(year)
    assert due_at(at(year, 1, 31), request_type="access") == end_of(year, 2, 29 if leap else 28)
    assert latest_extension(at(year - 1, 11, 30)) == end_of(year, 2, 29 if leap else 28)
    if leap:
        assert due_at(at(year, 2, 29), request_type="access") == end_of(year, 3, 29)
        assert add_calendar_months(at(year, 2, 29), 12) == at(year + 1, 2, 28)


@given(starts, starts, kinds, slas)
def test_a_later_verification_is_never_due_earlier(first, second, kind, sla):
    """Not even by an hour, month ends included: 30 January 01:00 and 31 January 00:00 are both due
    at the end of the last day of February (Regulation 1182/71 Art. 3(2)(c)), not at their own time
    of day as when the time was kept."""
    first, second = sorted((first, second))
    request_type, relationship = kind
    earlier = due_at(first, request_type=request_type, relationship=relationship, sla_days=sla)
    later = due_at(second, request_type=request_type, relationship=relationship, sla_days=sla)
    assert later >= earlier
    assert latest_extension(second) >= latest_extension(first)


def test_the_month_end_clamp_no_longer_reverses_the_order():
    assert due_at(datetime(2026, 1, 30, 1, tzinfo=UTC), request_type="access") == end_of(2026, 2, 28)
    assert due_at(datetime(2026, 1, 31, 0, tzinfo=UTC), request_type="access") == end_of(2026, 2, 28)


@given(starts, kinds, slas)
def test_an_extension_never_ends_before_the_due_date_nor_after_three_months(start, kind, sla):
    request_type, relationship = kind
    due = due_at(start, request_type=request_type, relationship=relationship, sla_days=sla)
    cap = latest_extension(start)
    assert start < due <= cap
    assert cap - start < timedelta(days=93), "three months of at most 92 days, to the end of that day"


@given(starts, st.integers(min_value=-5 * 86400, max_value=40 * 86400), ZONES, ZONES)
def test_deadline_notices_follow_utc_calendar_days_in_any_zone(due, seconds_before, zone_due, zone_now):
    now = due - timedelta(seconds=seconds_before)
    notice = notice_for(due.astimezone(zone_due), now.astimezone(zone_now))
    assert notice == notice_for(due, now)
    days_left = (due.astimezone(UTC).date() - now.astimezone(UTC).date()).days
    if now > due:
        assert notice == f"overdue_{(max(1, -days_left) - 1) // 3 + 1}"
    else:
        assert notice == ("due_today" if days_left <= 0 else "due_in_3_days" if days_left <= 3 else None)


def test_an_extension_to_a_date_runs_through_that_day():
    from rightsdesk.routing.controller_requests import StatusReport

    report = StatusReport(status="in_progress", reason="we need the archive", extend_to="2027-02-28")
    assert report.extend_to == datetime(2027, 2, 28, 23, 59, 59, 999999, tzinfo=timezone.utc)
    timed = StatusReport(status="in_progress", reason="r", extend_to="2027-02-28T10:00:00+01:00")
    assert timed.extend_to == datetime(2027, 2, 28, 9, tzinfo=timezone.utc), "a time is taken as given"


def test_an_extension_must_be_later_and_within_three_months():
    from rightsdesk.kernel.errors import InvalidInput

    verified = datetime(2026, 11, 30, 15, tzinfo=timezone.utc)
    due = deadlines.due_at(verified, request_type="access")
    last_day = deadlines.end_of_date("2027-02-28")
    assert deadlines.extended_due(last_day, due=due, verified_at=verified) == last_day
    naive = datetime(2027, 1, 15, 12)
    assert deadlines.extended_due(naive, due=due, verified_at=verified).tzinfo == timezone.utc
    for until, code in ((due, "not_later"), (last_day + timedelta(microseconds=1), "beyond_legal_limit")):
        with pytest.raises(InvalidInput) as refused:
            deadlines.extended_due(until, due=due, verified_at=verified)
        assert refused.value.fields == {"extend_to": code}
