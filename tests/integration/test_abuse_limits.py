"""The production defaults of the abuse limits bite (rightsdesk.store.limits), through the local runner
over real HTTP, on a stack started WITHOUT the loopback overrides every other test stack gets
(local/loopback.py): what a deployment without Limit* overrides has.

- one address: the submission after its hourly codes is answered 202 in the same shape, but
  stores nothing and sends no mail;
- one source: a burst gets 429 in the error shape, with Retry-After;
- a controller mails one subject only a few times per request per day.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
import requests
from requests.adapters import HTTPAdapter

from rightsdesk.kernel import clock
from rightsdesk.platform.config import Settings
from tests.integration.test_controller_api import add_controller, forwarded_request, url
from tests.support.flows import eventually

pytestmark = pytest.mark.integration

CODES_PER_ADDRESS = Settings.codes_per_address_per_hour
SUBMISSIONS_PER_SOURCE = Settings.submissions_per_source_per_minute
SUBJECT_MAILS_PER_DAY = Settings.subject_mails_per_request_per_day
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def stack(launch_stack):
    running = launch_stack(production_limits=True)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def table(stack):
    return stack.client("dynamodb")


# The source limit counts per caller address, and a test that moves the clock has it put back
# afterwards: a window one test used up would still be current for the next. So each test that
# spends the source limit calls from a loopback address of its own (all of 127/8 is loopback).
_loopback_hosts = itertools.count(2)


class _FromAddress(HTTPAdapter):
    def __init__(self, address: str):
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture
def source(stack):
    """A caller of the stack's API from an address no other test uses."""
    session = requests.Session()
    session.mount("http://", _FromAddress(f"127.0.0.{next(_loopback_hosts)}"))
    yield _Caller(session, stack.base_url)
    session.close()


class _Caller:
    def __init__(self, session: requests.Session, base_url: str):
        self._session, self._base_url = session, base_url

    def post(self, path: str, **kwargs) -> requests.Response:
        return self._session.post(self._base_url + path, timeout=30, **kwargs)


def _email() -> str:
    return f"limits-{uuid.uuid4().hex[:10]}@example.org"


def _stored(table, request_id: str) -> bool:
    key = {"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "REQUEST"}}
    return "Item" in table.get_item(TableName="rightsdesk-local-RightsTable", Key=key, ConsistentRead=True)


def _to_minute_start(stack) -> None:
    """Move the stack's clock to 2 s into a minute, so a burst does not straddle two windows."""
    now = clock.parse_iso(stack.clock()["now"])
    stack.advance_clock(60 - now.second + 2 - now.microsecond / 1e6)


def test_the_address_after_its_hourly_codes_gets_the_same_202_and_nothing_happens(stack, table, source):
    email = _email()
    stack.advance_clock(3600 - clock.parse_iso(stack.clock()["now"]).minute * 60)  # early in an hour
    _to_minute_start(stack)
    answers = []
    for _ in range(CODES_PER_ADDRESS + 1):
        response = source.post("/v1/requests", json={"site": "demo", "type": "erasure", "email": email}, headers=JSON)
        answers.append(response)
    assert {r.status_code for r in answers} == {202}
    shapes = [(sorted(r.json()), r.json()["status"], r.headers.get("Content-Type")) for r in answers]
    assert len(set(map(repr, shapes))) == 1, "the refused submission's answer looks like the others"
    ids = [r.json()["request_id"] for r in answers]
    assert [_stored(table, request_id) for request_id in ids] == [True] * CODES_PER_ADDRESS + [False]
    stack.drain()
    codes = [m for m in stack.outbox() if email in m["to"]]
    assert len(codes) == CODES_PER_ADDRESS, "no code mail beyond the limit"
    assert not any(ids[-1] in (m["text"] or "") for m in codes)


def test_a_burst_from_one_source_gets_429_with_retry_after(stack, source):
    _to_minute_start(stack)
    answers = []
    for _ in range(SUBMISSIONS_PER_SOURCE + 1):
        answers.append(
            source.post("/v1/requests", json={"site": "demo", "type": "access", "email": _email()}, headers=JSON)
        )
    assert [r.status_code for r in answers] == [202] * SUBMISSIONS_PER_SOURCE + [429]
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limited" and refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # A browser is sent back to the form with the problem, with the same status and header.
    page = source.post(
        "/v1/requests",
        data={"site": "demo", "type": "access", "email": _email()},
        headers={"Accept": "text/html"},
        allow_redirects=False,
    )
    assert page.status_code == 429 and page.headers["Retry-After"] and "<form" in page.text
    stack.advance_clock(61)
    again = source.post("/v1/requests", json={"site": "demo", "type": "access", "email": _email()}, headers=JSON)
    assert again.status_code == 202, "the next minute the source may submit again"


def test_429_is_documented_with_retry_after(stack):
    submit = stack.get("/openapi.json").json()["paths"]["/v1/requests"]["post"]["responses"]
    assert "429" in submit and "Retry-After" in submit["429"]["headers"]


def test_a_controller_mails_its_subject_only_a_few_times_a_day(stack):
    controller = add_controller(stack)
    table = _resource_table(stack)
    submitted = forwarded_request(stack, table, controller)
    view = stack.http.get(url(stack, f"/v1/controller/requests/{submitted.request_id}"), headers=controller.auth)
    assert view.status_code == 200  # the pull delivers it: status reports may follow
    due = clock.parse_iso(view.json()["due_at"])
    path = f"/v1/controller/requests/{submitted.request_id}/status"
    reports = [
        {"status": "acknowledged", "reason": "received"},
        {"status": "in_progress", "reason": "searching"},
        {"status": "in_progress", "reason": "more time", "extend_to": clock.isoformat(due + timedelta(days=10))},
        {"status": "in_progress", "reason": "more time", "extend_to": clock.isoformat(due + timedelta(days=20))},
        {"status": "completed", "reason": "done"},
    ]

    def to_subject() -> list[dict]:
        return [m for m in stack.outbox() if submitted.email in m["to"]]

    stack.drain()
    before = len(to_subject())  # the code and the confirmation
    for report in reports:
        answer = stack.post(path, json=report, headers=controller.auth)
        assert answer.status_code == 200, answer.text
        stack.advance_clock(5)  # a status mail's id holds the second it was sent: one report per second
    stack.drain()

    def updates() -> list[dict]:  # status and extension mails alike
        return to_subject()[before:]

    eventually(lambda: len(updates()) >= SUBJECT_MAILS_PER_DAY)
    stack.drain()
    assert len(updates()) == SUBJECT_MAILS_PER_DAY
    assert (
        stack.get(
            f"/v1/requests/{submitted.request_id}", headers={"Authorization": f"Bearer {submitted.status_token}"}
        ).json()["status"]
        == "completed"
    )


def _resource_table(stack):
    import boto3

    return boto3.resource(
        "dynamodb",
        endpoint_url=stack.moto_url,
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).Table("rightsdesk-local-RightsTable")
