"""Due dates end at the end of the day (Regulation 1182/71 Art. 3), through the local runner: the
subject sees the end of the UTC day one month after verification, and a controller may extend to
any time on the last allowed day, three months after verification, and not a second into the next."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rightsdesk.kernel import clock, deadlines
from tests.support.flows import Flow, wait_for
from tests.support.stack import deliveries_to

pytestmark = pytest.mark.integration


def test_the_due_date_and_the_latest_extension_end_at_the_end_of_the_day(stack, own_controller):
    flow = Flow(stack, own_controller.site)
    verified = flow.submit_and_verify()
    request_id = verified["request_id"]
    due = clock.parse_iso(verified["due_at"])
    assert due.time().replace(microsecond=0) == datetime.max.time().replace(microsecond=0)  # 23:59:59

    api = own_controller.auth
    wait_for(lambda: flow.status(request_id) == "delivered", "the controller's webhook delivery")
    [forwarded] = deliveries_to(stack, own_controller, "dsr.request.forwarded")
    assert forwarded["verified"] is True, "signed with the controller's own secret, checked on its own path"
    view = stack.get(f"/v1/controller/requests/{request_id}", headers=api).json()
    verified_at = clock.parse_iso(view["verified_at"])
    assert clock.parse_iso(view["due_at"]) == due
    assert due.date() == deadlines.add_calendar_months(verified_at, 1).date()
    last_day = deadlines.add_calendar_months(verified_at, 3).date()

    path = f"/v1/controller/requests/{request_id}/status"
    reason = "We need to search the chat archive."
    for extend_to in (f"{last_day.isoformat()}T12:00:00Z", f"{last_day.isoformat()}T23:59:59Z"):
        answer = stack.post(
            path, headers=api, json={"status": "acknowledged", "reason": reason, "extend_to": extend_to}
        )
        assert answer.status_code == 200, (extend_to, answer.text)
        assert answer.json()["due_at"] == extend_to
    next_day = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    beyond = stack.post(
        path, headers=api, json={"status": "acknowledged", "reason": reason, "extend_to": clock.isoformat(next_day)}
    )
    assert beyond.status_code == 422 and beyond.json()["error"]["fields"] == {"extend_to": "beyond_legal_limit"}
    assert f"{last_day.isoformat()}T23:59:59Z" in beyond.json()["error"]["message"]
