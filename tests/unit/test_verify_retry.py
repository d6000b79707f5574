"""Verifying is safe to retry: a subject whose answer was lost gets the same status token again.

After the conditional write that marks a request verified, a dropped connection or an API that
dies before answering leaves the subject without the token (only its keyed hash is stored); the
routing and the confirmation mail follow from the stored transition (rightsdesk.routing.follow_up),
whatever became of the call. The token is derived from the request
id and the code's keyed hash under the hash key, and the request keeps that code hash, so the same
code gives the same answer again for the code's lifetime (15 minutes) after verification. Wrong
codes on that path are counted before the comparison (with the code's own wrong attempts, up to
submissions.MAX_CODE_ATTEMPTS) and answered with the same 409 as any request not waiting for a code.

Against moto in-process, as tests/unit/test_guard.py.
"""

from __future__ import annotations

import json

import pytest
from moto import mock_aws

from rightsdesk.intake import submissions
from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, InvalidCode, Unauthorized
from rightsdesk.platform import aws_clients, config, hashing
from rightsdesk.routing import follow_up, registry
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import code_in, drain_queue, made, moto_cloud

REGION = "eu-central-1"


class Crash(BaseException):
    """The Lambda environment died here: no handler of ours sees it (as local.faults.InjectedCrash)."""


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(patch, "rightsdesk-retry", region=REGION)
        session, queues = world.session, world.queues
        registry.register(name="Retried", site_key="retried", contact_email="dpo@retried.example", delivery="pull")
        yield session, queues
        aws_clients.forget_clients()
    config.reload()
    clock.set_offset(0)


def drain(cloud, queue: str) -> list[dict]:
    session, queues = cloud
    return drain_queue(session, queues[queue])


def submitted(cloud) -> tuple[str, str]:
    """A new request and its emailed code."""
    drain(cloud, "MailQueue")
    request_id = submissions.submit(
        Submission(site="retried", type="access", email="ana@example.org"), locale="en"
    ).request_id
    code = code_in(drain(cloud, "MailQueue"), request_id)
    return request_id, code


def stored(request_id: str) -> RequestItem:
    return RequestItem.get(RequestItem.key(request_id), RequestItem.SK, consistent_read=True)


def refused(request_id: str, code: str) -> Conflict:
    with pytest.raises(Conflict) as error:
        submissions.verify(request_id, code)
    assert error.value.status == 409 and error.value.code == "not_awaiting_verification"
    assert error.value.message == "this request is not waiting for a code" and not error.value.fields
    return error.value


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_an_api_that_died_after_verifying_answers_the_retry_with_the_token(cloud, monkeypatch):
    request_id, code = submitted(cloud)
    drain(cloud, "DeliveryQueue")

    def die(*_, **__):
        raise Crash()

    with monkeypatch.context() as patch:  # dies after the write, while making its answer
        patch.setattr(submissions, "Verified", die)
        with pytest.raises(Crash):
            submissions.verify(request_id, code)
    assert stored(request_id).status == "verified", "the verification stands; only its answer is lost"

    again = submissions.verify(request_id, code)

    assert (again.request_id, again.status, again.due_at) == (request_id, "verified", stored(request_id).due_at)
    assert again.status_token.startswith("rst_")
    view = submissions.status_view(submissions.authorize(request_id, again.status_token))
    assert view["status"] == "verified" and view["request_id"] == request_id


def test_the_verification_queues_nothing_its_stored_transition_is_followed_up(cloud):
    """The routing and the confirmation come from the table's stream (rightsdesk.routing.follow_up,
    run by DeadlineWatchFunction), not from the verification: a container that dies after the
    transaction loses neither. Followed up twice, the same route and mail id come twice, which the
    dispatcher and the notifier each act on once."""
    request_id, code = submitted(cloud)
    drain(cloud, "DeliveryQueue")
    answer = submissions.verify(request_id, code)
    assert drain(cloud, "DeliveryQueue") == [] and drain(cloud, "MailQueue") == []

    follow_up.follow_up(request_id)
    follow_up.follow_up(request_id)

    routes = drain(cloud, "DeliveryQueue")
    assert routes == [{"request_id": request_id, "event": "route"}] * 2
    mails = [m for m in drain(cloud, "MailQueue") if m["mail_id"] == f"verified-{request_id}"]
    assert len(mails) == 2
    assert made(mails[0]).context["status_url"].endswith(f"/status/{request_id}?token={answer.status_token}&lang=en")


def test_a_lost_answer_is_the_same_answer_again(cloud):
    request_id, code = submitted(cloud)
    first = submissions.verify(request_id, code)
    again = submissions.verify(request_id, code)
    assert again == first
    assert submissions.verify(request_id, code).status_token == first.status_token
    drain(cloud, "MailQueue")


def test_wrong_codes_on_a_verified_request_are_counted_and_refused_alike(cloud):
    request_id, code = submitted(cloud)
    with pytest.raises(InvalidCode):  # one wrong code while it waits for one: 400, counted on the code
        submissions.verify(request_id, wrong(code))
    token = submissions.verify(request_id, code).status_token
    assert stored(request_id).verify_retries == 1, "the code's own wrong attempt counts"

    for tries in range(2, submissions.MAX_CODE_ATTEMPTS):
        refused(request_id, wrong(code))
        assert stored(request_id).verify_retries == tries
    assert submissions.verify(request_id, code).status_token == token, "the last try left"
    assert stored(request_id).verify_retries == submissions.MAX_CODE_ATTEMPTS
    refused(request_id, code)  # the right code too, once the tries are spent
    assert stored(request_id).verify_retries == submissions.MAX_CODE_ATTEMPTS, "never counted past the limit"


def test_after_the_codes_lifetime_a_retry_is_refused(cloud):
    request_id, code = submitted(cloud)
    token = submissions.verify(request_id, code).status_token
    lifetime = retention.keep_for(retention.Rule.VERIFICATION_CODE)
    assert lifetime.total_seconds() == 15 * 60
    clock.advance(lifetime.total_seconds() - 1)
    assert submissions.verify(request_id, code).status_token == token
    clock.advance(2)
    refused(request_id, code)
    assert submissions.authorize(request_id, token).request_id == request_id, "the token itself stays valid"


def test_another_requests_code_does_not_work(cloud):
    first_id, first_code = submitted(cloud)
    second_id, second_code = submitted(cloud)
    first = submissions.verify(first_id, first_code)
    second = submissions.verify(second_id, second_code)
    assert first.status_token != second.status_token
    if first_code != second_code:
        refused(first_id, second_code)
    with pytest.raises(Unauthorized):
        submissions.authorize(first_id, second.status_token)
    drain(cloud, "MailQueue")


def test_a_retry_that_overtakes_the_first_call_gets_the_same_token(cloud, monkeypatch):
    """Both calls got past the code check; the first to write wins, the other answers as a retry."""
    request_id, code = submitted(cloud)
    original = submissions._mark_verified
    overtaking = []

    def overtaken(*args, **kwargs):
        monkeypatch.setattr(submissions, "_mark_verified", original)
        overtaking.append(submissions.verify(request_id, code))
        return original(*args, **kwargs)

    monkeypatch.setattr(submissions, "_mark_verified", overtaken)
    answer = submissions.verify(request_id, code)
    assert answer.status_token == overtaking[0].status_token
    drain(cloud, "MailQueue")


def test_the_request_keeps_hashes_and_a_count_only(cloud):
    request_id, code = submitted(cloud)
    token = submissions.verify(request_id, code).status_token
    item = stored(request_id)
    assert item.verified_code_hash == hashing.keyed_hash("code", code)
    assert item.status_token_hash == hashing.keyed_hash("status_token", token)
    assert code not in (item.verified_code_hash, item.status_token_hash) and token not in json.dumps(item.serialize())
    drain(cloud, "MailQueue")


def test_the_token_needs_the_key(cloud, monkeypatch):
    made = hashing.derived_token("status_token", "dsr_1", "ab" * 32, prefix="rst_")
    assert made == hashing.derived_token("status_token", "dsr_1", "ab" * 32, prefix="rst_")
    assert len(made) == len(hashing.new_token("rst_")), "256 bits, as a random token"
    assert made != hashing.derived_token("status_token", "dsr_2", "ab" * 32, prefix="rst_")
    assert made != hashing.derived_token("other", "dsr_1", "ab" * 32, prefix="rst_")
    monkeypatch.setenv("RIGHTSDESK_HASH_KEY", "another key")
    config.reload()
    hashing.forget_key()
    try:
        assert made != hashing.derived_token("status_token", "dsr_1", "ab" * 32, prefix="rst_")
    finally:
        monkeypatch.undo()
        config.reload()
        hashing.forget_key()
