"""A verification spends its attempt in the same conditional write that reads the code's hash, so
the five attempts hold whatever another caller does between our reads and that write, and no
attempt is spent on a code that is gone or past its 15 minutes (nor is a code made up by the write).

Also: the controller record a container may keep a minute for a verification's deadline, but never
for what security depends on. Against moto in-process, as tests/unit/test_verify_retry.py; the
calls themselves are counted in tests/integration/test_call_budgets.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from moto import mock_aws

from rightsdesk.intake import submissions
from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import CodeExpired, InvalidCode, TooManyAttempts
from rightsdesk.platform import aws_clients, config, container_cache
from rightsdesk.routing import controller_lookup, registry
from rightsdesk.store.items.requests import ChallengeItem, RequestItem
from tests.support.aws import code_in, drain_queue, moto_cloud

REGION = "eu-central-1"


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(patch, "rightsdesk-attempts", region=REGION)
        registry.register(name="Attempts", site_key="attempts", contact_email="dpo@attempts.example", delivery="pull")
        yield world.session, world.queues
        aws_clients.forget_clients()
    config.reload()
    clock.set_offset(0)


def drain(cloud, queue: str) -> list[dict]:
    session, queues = cloud
    return drain_queue(session, queues[queue])


def submitted(cloud, email: str = "ana@example.org") -> tuple[str, str]:
    drain(cloud, "MailQueue")
    request_id = submissions.submit(Submission(site="attempts", type="access", email=email), locale="en").request_id
    return request_id, code_in(drain(cloud, "MailQueue"), request_id)


def challenge(request_id: str) -> ChallengeItem | None:
    try:
        return ChallengeItem.get(RequestItem.key(request_id), ChallengeItem.SK, consistent_read=True)
    except ChallengeItem.DoesNotExist:
        return None


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_attempts_spent_by_others_after_our_reads_refuse_even_the_right_code(cloud, monkeypatch):
    """Five guesses land between this verification's read of the request and its write: the
    write's condition refuses it, right code or not; the limit never depends on a value read before."""
    request_id, code = submitted(cloud)
    real = submissions.load_request

    def others_guess_meanwhile(wanted):
        request = real(wanted)
        ChallengeItem(request.pk, ChallengeItem.SK).update(actions=[ChallengeItem.attempts.set(5)])
        return request

    monkeypatch.setattr(submissions, "load_request", others_guess_meanwhile)
    with pytest.raises(TooManyAttempts):
        submissions.verify(request_id, code)
    assert submissions.load_request(request_id).status == "identity_unverified"
    assert challenge(request_id).attempts == 5


def test_each_wrong_code_spends_one_attempt_and_the_sixth_try_is_refused(cloud):
    request_id, code = submitted(cloud, "bo@example.org")
    for spent in range(1, 6):
        with pytest.raises(InvalidCode):
            submissions.verify(request_id, wrong(code))
        assert challenge(request_id).attempts == spent
    with pytest.raises(TooManyAttempts):
        submissions.verify(request_id, code)
    assert challenge(request_id).attempts == 5


@pytest.mark.parametrize("how", ["deleted", "past_its_minutes"])
def test_a_code_gone_or_past_its_minutes_is_expired_and_spends_nothing(cloud, how):
    request_id, code = submitted(cloud, f"{how}@example.org")
    if how == "deleted":
        challenge(request_id).delete()
    else:
        clock.advance(timedelta(minutes=15, seconds=1).total_seconds())
    with pytest.raises(CodeExpired):
        submissions.verify(request_id, code)
    left = challenge(request_id)
    if how == "deleted":
        assert left is None, "the attempt's write made up no code"
    else:
        assert left.attempts == 0


def test_a_right_code_after_wrong_ones_verifies_and_keeps_their_count(cloud):
    request_id, code = submitted(cloud, "cy@example.org")
    for _ in range(2):
        with pytest.raises(InvalidCode):
            submissions.verify(request_id, wrong(code))
    verified = submissions.verify(request_id, code)
    stored = submissions.load_request(request_id)
    assert verified.status == stored.status == "verified"
    assert stored.verify_retries == 2
    assert challenge(request_id) is None, "the code goes with the verification"


def test_the_deadline_comes_from_a_recent_controller_record_and_security_reads_fresh(cloud):
    """A verification may use the controller as read a moment ago (its deadline setting); the
    lookups security depends on (controller_lookup.get_controller: the authorizer, the dispatcher) never do."""
    container_cache.forget_all()
    created = registry.register(
        name="Recent", site_key="recent", contact_email="dpo@recent.example", delivery="pull", sla_days=10
    )
    controller_id = created.controller.controller_id
    assert controller_lookup.recent_controller(controller_id).sla_days == 10
    # Changed by another process (an operator's CLI): this container's recent copy stays up to a minute.
    registry.ControllerItem(registry.ControllerItem.key(controller_id), registry.ControllerItem.SK).update(
        actions=[
            registry.ControllerItem.sla_days.set(20),
            registry.ControllerItem.state.set(controller_lookup.DISABLED),
        ]
    )
    assert controller_lookup.recent_controller(controller_id).sla_days == 10
    assert controller_lookup.get_controller(controller_id).sla_days == 20
    assert registry.authenticate(created.api_key) is None, "a disabled controller's key fails at once"
    clock.advance(controller_lookup.RECENT_SECONDS)
    assert controller_lookup.recent_controller(controller_id).sla_days == 20, "a minute later the change is seen"


def test_a_change_made_by_this_process_is_seen_at_once(cloud):
    container_cache.forget_all()
    created = registry.register(name="Mine", site_key="mine", contact_email="dpo@mine.example", delivery="pull")
    assert controller_lookup.resolve_site("mine", recent=True).controller_id == created.controller.controller_id
    registry.disable(created.controller.controller_id)
    assert controller_lookup.state_of(controller_lookup.resolve_site("mine", recent=True)) == controller_lookup.DISABLED
