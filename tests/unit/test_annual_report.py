"""The annual self-assessment's figures from hand-made facts, and its HTML as one self-contained file."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from rightsdesk_cli.annual import html as annual_html
from rightsdesk_cli.annual.report import BreachFacts, PolicyFacts, RequestFacts, figures, median, percentile

UTC = timezone.utc
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def at(month: int, day: int, hour: int = 10, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def request(
    kind="access",
    route="internal",
    status="completed",
    created=None,
    verified_after=timedelta(minutes=5),
    days=None,
    due_days=30,
    closed=None,
) -> RequestFacts:
    created = created or at(1, 10)
    verified = created + verified_after if verified_after is not None else None
    closed = closed or (verified + timedelta(days=days) if days is not None and verified else None)
    return RequestFacts(
        request_type=kind,
        route=route,
        status=status,
        created_at=created,
        verified_at=verified,
        due_at=verified + timedelta(days=due_days) if verified else None,
        closed_at=closed,
    )


REQUESTS = [
    request("access", "internal", "completed", days=2),
    request("access", "internal", "completed", created=at(2, 1), days=4),
    request("erasure", "webhook", "completed", created=at(3, 1), days=10),
    request("erasure", "email", "completed", created=at(4, 1), days=40),  # late: due after 30 days
    request("rectification", "internal", "rejected", created=at(5, 1), days=1),
    request("complaint", "internal", "in_progress", created=at(6, 1)),  # open, due 2025-07: overdue by NOW
    request("access", "webhook", "delivery_failed", created=at(7, 1)),
    request("objection", "pull", "cancelled", created=at(8, 1), days=3),
    request("access", "internal", "identity_unverified", created=at(9, 1), verified_after=None),  # not counted
    request("access", "internal", "completed", created=at(12, 31, 23, year=2024), days=1),  # last year
    request("portability", "internal", "completed", created=at(12, 31, 23), days=20),  # this year, just
]


def test_requests_by_type_route_and_outcome():
    r = figures(2025, REQUESTS, [], [], now=NOW)["requests"]
    assert r["total"] == 9
    assert r["by_type"] == {
        "access": 3,
        "complaint": 1,
        "erasure": 2,
        "objection": 1,
        "portability": 1,
        "rectification": 1,
    }
    assert r["by_route"] == {"email": 1, "internal": 5, "pull": 1, "webhook": 2}
    assert r["by_outcome"] == {"completed": 5, "rejected": 1, "cancelled": 1, "open": 2}
    assert r["by_type_and_outcome"]["access"] == {"completed": 2, "rejected": 0, "cancelled": 0, "open": 1}


def test_timeliness_and_days_to_complete():
    r = figures(2025, REQUESTS, [], [], now=NOW)["requests"]
    assert (r["answered"], r["answered_on_time"], r["on_time_share"]) == (6, 5, 0.833)
    assert r["open_overdue"] == 2  # the complaint and the undelivered access request
    # completed: 2, 4, 10, 40, 20 days -> sorted 2, 4, 10, 20, 40
    assert r["days_to_complete"] == {"count": 5, "median": 10.0, "p95": 40.0}
    assert r["delivery_failures"] == {"total": 1, "by_route": {"webhook": 1}}


def test_percentiles_are_the_nearest_rank():
    assert percentile(list(range(1, 21)), 0.95) == 19
    assert percentile([4, 1, 3, 2], 0.95) == 4
    assert percentile([7], 0.95) == 7
    assert percentile([], 0.95) is None
    assert median([1, 2, 3, 4]) == 2.5 and median([]) is None


def breach(incident_id, detected, declared_after, authority_after) -> BreachFacts:
    return BreachFacts(
        incident_id=incident_id,
        detected_at=detected,
        declared_at=detected + declared_after,
        authority_notified_at=detected + authority_after if authority_after else None,
        controllers_due_at=detected + timedelta(hours=72),
        authority_due_at=detected + timedelta(hours=72),
        high_risk=False,
        notices_sent=3,
        notices_total=4,
    )


def test_breaches_with_their_notification_times():
    found = figures(
        2025,
        [],
        [
            breach("inc_1", at(2, 1), timedelta(hours=5), timedelta(hours=30)),
            breach("inc_2", at(6, 1), timedelta(hours=80), timedelta(hours=70)),  # notices late
            breach("inc_3", at(9, 1), timedelta(hours=2), None),  # authority never recorded
            breach("inc_0", at(9, 1, year=2024), timedelta(hours=2), timedelta(hours=3)),
        ],
        [],
        now=NOW,
    )["breaches"]
    assert found["total"] == 3 and found["notified_on_time"] == 1
    first = found["incidents"][0]
    assert (first["incident_id"], first["hours_to_notices"], first["hours_to_authority"]) == ("inc_1", 5.0, 30.0)
    assert [i["authority_on_time"] for i in found["incidents"]] == [True, True, False]
    assert [i["notices_on_time"] for i in found["incidents"]] == [True, False, True]


def test_notices_declared_in_time_but_notified_late_are_late():
    notified_late = BreachFacts(
        incident_id="inc_4",
        detected_at=at(3, 1),
        declared_at=at(3, 1) + timedelta(hours=2),
        authority_notified_at=at(3, 2),
        controllers_due_at=at(3, 1) + timedelta(hours=72),
        authority_due_at=at(3, 1) + timedelta(hours=72),
        high_risk=False,
        notices_sent=1,
        notices_total=1,
        controllers_notified_at=at(3, 1) + timedelta(hours=96),
    )
    row = figures(2025, [], [notified_late], [], now=NOW)["breaches"]["incidents"][0]
    assert (row["notices_on_time"], row["notices_state"], row["authority_state"]) == (False, "met_late", "met_on_time")


def test_a_request_answered_or_cancelled_after_its_due_date_stays_late():
    late = [
        request("access", "webhook", "completed", created=at(3, 1), days=31, due_days=30),  # answered late
        request("access", "webhook", "cancelled", created=at(3, 2), days=35, due_days=30),  # gave up waiting
        request("access", "webhook", "cancelled", created=at(3, 3), days=3, due_days=30),  # withdrawn in time
    ]
    r = figures(2025, late, [], [], now=NOW)["requests"]
    assert (r["answered"], r["answered_on_time"], r["answered_late"]) == (1, 0, 1)
    assert (r["withdrawn_after_due"], r["open_overdue"]) == (1, 0)


def test_policy_versions_published_in_the_year():
    found = figures(
        2025,
        [],
        [],
        [
            PolicyFacts("privacy", "2025-01", True, at(1, 5), at(2, 5)),
            PolicyFacts("privacy", "2025-02", False, at(7, 5), at(7, 5)),
            PolicyFacts("terms", "2024-09", False, at(9, 5, year=2024), at(9, 5, year=2024)),
        ],
        now=NOW,
    )["policies"]
    assert (found["total"], found["major"]) == (2, 1)
    assert [v["version"] for v in found["versions"]] == ["2025-01", "2025-02"]


def test_the_html_report_is_self_contained():
    data = figures(
        2025,
        REQUESTS,
        [breach("inc_1", at(2, 1), timedelta(hours=5), timedelta(hours=30))],
        [PolicyFacts("privacy", "2025-01", True, at(1, 5), at(2, 5))],
        now=NOW,
    )
    html = annual_html.render(data, operator="Example d.o.o. <ops>")

    assert html.count("<svg") >= 4 and "<style>" in html
    assert "Example d.o.o. &lt;ops&gt;" in html, "operator text is escaped"
    assert not re.search(r"<(script|link|img|iframe|object)\b", html)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "nothing is fetched from elsewhere"
    assert "@import" not in html and "url(" not in html
    assert "inc_1" in html and "83.3 %" in html


def test_charts_cope_with_nothing_to_draw():
    # Not merely "some output": nothing to draw says so in words, a zero draws a bar of no length
    # labelled 0, and the same chart with a value does draw one (the positive control).
    empty = str(annual_html.bar_chart([], title="Requests by type"))
    assert empty == '<p class="empty">No data for requests by type.</p>'

    def bar_widths(html: str) -> list[float]:
        return [float(width) for width in re.findall(r'<rect [^>]*width="([\d.]+)"', html)]

    zero = str(annual_html.bar_chart([("a", 0)], title="Requests by type"))
    assert "<title" in zero and "Requests by type" in zero and '<text x="' in zero
    assert re.search(r'class="value">0<', zero) and bar_widths(zero) == [0.0]
    some = str(annual_html.bar_chart([("a", 0), ("b", 3)], title="Requests by type"))
    assert bar_widths(some)[0] == 0.0 and bar_widths(some)[1] > 0
