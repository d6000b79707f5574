"""The handlers' idempotent-on-first-use wrapper and the core's botocore clients, against moto in-process.

The wrapper imports powertools' idempotency utility (and with it boto3) only when first called; it
must still behave as powertools' idempotent_function: the same key answers the stored result, a key
in flight elsewhere is refused, and the invocation's context registered before the first call counts.
"""

from __future__ import annotations

import pytest
from moto import mock_aws

from rightsdesk.platform import aws_clients, handler_support
from tests.support.aws import moto_cloud


class Context:
    function_name = "test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:test"
    aws_request_id = "request"

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture()
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(patch, "rightsdesk-support")
        patch.setenv("IDEMPOTENCY_TABLE", world.tables["IdempotencyTable"])
        yield world
    aws_clients.forget_clients()  # none of this moto's clients outlive it


def test_the_same_key_is_answered_from_the_record_not_run_again(cloud):
    runs = []

    def send(*, message: dict) -> dict:
        runs.append(message["mail_id"])
        return {"result": f"sent {len(runs)}"}

    idempotent = handler_support.IdempotentOnFirstUse(
        send, data_keyword_argument="message", event_key_jmespath="mail_id", expires_after_seconds=60
    )
    idempotent.register_lambda_context(Context(30_000))
    assert idempotent(message={"mail_id": "m1"}) == {"result": "sent 1"}
    assert idempotent(message={"mail_id": "m1"}) == {"result": "sent 1"}
    assert idempotent(message={"mail_id": "m2"}) == {"result": "sent 2"}
    assert runs == ["m1", "m2"]


def test_a_key_in_flight_elsewhere_is_refused_with_the_cores_own_error(cloud):
    def slow(*, message: dict) -> dict:
        # While this runs, another invocation with the same key arrives.
        with pytest.raises(handler_support.AlreadyInProgress):
            other(message=message)
        return {"result": "done"}

    first = handler_support.IdempotentOnFirstUse(
        slow, data_keyword_argument="message", event_key_jmespath="mail_id", expires_after_seconds=60
    )
    other = handler_support.IdempotentOnFirstUse(
        slow, data_keyword_argument="message", event_key_jmespath="mail_id", expires_after_seconds=60
    )
    for wrapper in (first, other):
        wrapper.register_lambda_context(Context(30_000))
    assert first(message={"mail_id": "m1"}) == {"result": "done"}


def test_the_context_registered_before_the_first_call_bounds_the_in_flight_record(cloud):
    idempotent = handler_support.IdempotentOnFirstUse(
        lambda *, message: {"ok": True},
        data_keyword_argument="message",
        event_key_jmespath="mail_id",
        expires_after_seconds=60,
    )
    idempotent.register_lambda_context(Context(5_000))
    idempotent(message={"mail_id": "m1"})
    item = cloud.session.client("dynamodb").scan(TableName=cloud.tables["IdempotencyTable"])["Items"][0]
    assert "in_progress_expiration" in item, "set only when powertools was given the invocation's context"


def test_clients_follow_the_environment_after_forget(cloud, monkeypatch):
    before = aws_clients.client("sqs")
    assert aws_clients.client("sqs") is before, "one client per service"
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.setenv(name, "eu-west-1")
    assert aws_clients.client("sqs").meta.region_name == "eu-central-1", "until forgotten"
    aws_clients.forget_clients()
    assert aws_clients.client("sqs").meta.region_name == "eu-west-1"
