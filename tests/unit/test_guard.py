"""Status-token guessing is rate-limited per source address (rightsdesk.intake.guard), against moto
in-process: after MAX_FAILURES failed attempts in a window the address is refused before any token
is compared; other addresses and the next window are not affected; only a keyed hash of the
address is stored, with a TTL."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws

from rightsdesk.intake import guard, submissions
from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import NotFound, TooManyAttempts, Unauthorized
from rightsdesk.platform import aws_clients, config, hashing
from rightsdesk.routing import registry
from tests.support.aws import code_in, moto_cloud

REGION = "eu-central-1"
ATTACKER, SUBJECT = "203.0.113.7", "198.51.100.20"


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(patch, "rightsdesk-guard", region=REGION)
        session, tables, queues = world.session, world.tables, world.queues
        registry.register(name="Guarded", site_key="guarded", contact_email="dpo@guarded.example", delivery="pull")
        yield session, tables["RightsTable"], queues["MailQueue"]
        aws_clients.forget_clients()
    config.reload()
    clock.set_offset(0)


@pytest.fixture
def verified(cloud):
    session, _, mail_queue = cloud
    submitted = submissions.submit(Submission(site="guarded", type="access", email="ana@example.org"), locale="en")
    sqs = session.client("sqs")
    code = None
    while messages := sqs.receive_message(QueueUrl=mail_queue, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=mail_queue, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            if body["mail_id"] == f"verify-{submitted.request_id}":
                code = code_in([body], submitted.request_id)
    answer = submissions.verify(submitted.request_id, code)
    return submitted.request_id, answer.status_token


def test_an_address_that_keeps_guessing_is_refused_even_the_right_token(cloud, verified):
    request_id, token = verified
    for _ in range(guard.MAX_FAILURES - 1):
        with pytest.raises(Unauthorized):
            submissions.authorize(request_id, "rst_guess", source=ATTACKER)
    with pytest.raises(NotFound):  # guessing request ids counts too
        submissions.authorize("dsr_unknown", token, source=ATTACKER)
    with pytest.raises(TooManyAttempts) as refused:
        submissions.authorize(request_id, token, source=ATTACKER)
    assert refused.value.status == 429

    assert submissions.authorize(request_id, token, source=SUBJECT).request_id == request_id, "others are not affected"
    clock.advance(guard.WINDOW_SECONDS)
    assert submissions.authorize(request_id, token, source=ATTACKER).request_id == request_id, "the next window is open"


def test_only_a_keyed_hash_of_the_address_is_stored_and_it_expires(cloud, verified):
    session, table, _ = cloud
    request_id, _ = verified
    with pytest.raises(Unauthorized):
        submissions.authorize(request_id, None, source="192.0.2.44")
    items = [
        item
        for item in session.client("dynamodb").scan(TableName=table)["Items"]
        if item["pk"]["S"].startswith("GUARD#")
    ]
    assert items and not any("192.0.2.44" in json.dumps(item) for item in items)
    assert any(hashing.keyed_hash("source", "192.0.2.44") in item["pk"]["S"] for item in items)
    for item in items:
        assert int(item["expires_at"]["N"]) - clock.epoch() <= guard.WINDOW_SECONDS


def test_without_an_address_nothing_is_counted(cloud, verified):
    request_id, token = verified
    for _ in range(guard.MAX_FAILURES + 1):
        with pytest.raises(Unauthorized):
            submissions.authorize(request_id, "rst_guess")
    assert submissions.authorize(request_id, token).request_id == request_id
