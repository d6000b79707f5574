import calendar
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


# ------------------------------------------------------------------ properties: month ends, leap years, time zones

from zoneinfo import ZoneInfo  # noqa: E402 - the property tests' own imports, kept with them

from rightsdesk.deadline_watch import notice_for  # noqa: E402

ZONES = st.sampled_from([UTC, ZoneInfo("Europe/Ljubljana"), ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"),
                         ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago"), ZoneInfo("Asia/Kathmandu")])
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC))
# Month ends and the days around 29 February are where calendar arithmetic goes wrong.
edge_days = st.builds(
    lambda year, month, back, hour: datetime(year, month, calendar.monthrange(year, month)[1], hour, tzinfo=UTC)
    - timedelta(days=back),
    st.integers(2000, 2099), st.integers(1, 12), st.integers(0, 3), st.integers(0, 23),
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
def test_one_month_is_the_same_day_next_month_clamped_to_its_end_at_the_same_time(start):
    due = due_at(start, request_type="access")
    next_month = (start.month % 12) + 1
    assert (due.year, due.month) == (start.year + (start.month == 12), next_month)
    assert due.day == min(start.day, calendar.monthrange(due.year, due.month)[1])
    assert due.time() == start.time()
    assert timedelta(days=28) <= due - start <= timedelta(days=31)


@given(st.integers(2000, 2099))
def test_leap_days(year):
    leap = calendar.isleap(year)
    assert due_at(at(year, 1, 31), request_type="access") == at(year, 2, 29 if leap else 28)
    assert latest_extension(at(year - 1, 11, 30)) == at(year, 2, 29 if leap else 28)
    if leap:
        assert due_at(at(year, 2, 29), request_type="access") == at(year, 3, 29)
        assert add_calendar_months(at(year, 2, 29), 12) == at(year + 1, 2, 28)


@given(starts, starts, kinds, slas)
def test_a_later_verification_is_never_due_on_an_earlier_day(first, second, kind, sla):
    """Not even by an hour, except where the month end clamps: 30 January 01:00 and 31 January 00:00
    are both due on the last day of February, at their own time of day, so the later one is due an
    hour earlier. (Regulation 1182/71 would end both periods at the end of that day.)"""
    first, second = sorted((first, second))
    request_type, relationship = kind
    earlier = due_at(first, request_type=request_type, relationship=relationship, sla_days=sla)
    later = due_at(second, request_type=request_type, relationship=relationship, sla_days=sla)
    if later < earlier:
        assert later.date() == earlier.date() == (later + timedelta(days=1)).replace(day=1).date() - timedelta(days=1)
        assert second.day > later.day, "only a clamped day-of-month can go back"


@given(starts, kinds, slas)
def test_an_extension_never_ends_before_the_due_date_nor_after_three_months(start, kind, sla):
    request_type, relationship = kind
    due = due_at(start, request_type=request_type, relationship=relationship, sla_days=sla)
    cap = latest_extension(start)
    assert start < due <= cap
    assert cap - start <= timedelta(days=92)


@given(starts, st.integers(min_value=-5 * 86400, max_value=40 * 86400), ZONES, ZONES)
def test_deadline_notices_follow_utc_calendar_days_in_any_zone(due, seconds_before, zone_due, zone_now):
    now = due - timedelta(seconds=seconds_before)
    notice = notice_for(due.astimezone(zone_due), now.astimezone(zone_now))
    assert notice == notice_for(due, now)
    days_left = (due.date() - now.date()).days
    assert notice == ("due_today" if days_left <= 0 else "due_in_3_days" if days_left <= 3 else None)
