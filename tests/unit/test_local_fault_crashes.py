"""A crash injected into a handler's AWS call (local/faults.py): before the call (nothing was
written) or after it (`"crash": "after"`: the write stands, the environment dies as the answer comes
back). In-process moto; the rules are read directly, as in the unit tests' one process."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from local import faults


@pytest.fixture
def queue(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-central-1")
        url = sqs.create_queue(QueueName="crash-probe")["QueueUrl"]
        faults.install()
        yield sqs, url
    faults.clear()


def waiting(sqs, url: str) -> int:
    return len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []))


@pytest.mark.parametrize(("crash", "written"), [(True, 0), ("after", 1)])
def test_a_crash_before_the_call_writes_nothing_and_one_after_it_leaves_the_write(queue, crash, written):
    sqs, url = queue
    [rule] = faults.add([{"service": "sqs", "operation": "SendMessage", "crash": crash, "function": "ProbeFunction"}])
    assert rule["crash"] == crash
    with faults.running("ProbeFunction"), pytest.raises(faults.InjectedCrash):
        sqs.send_message(QueueUrl=url, MessageBody="{}")
    assert waiting(sqs, url) == written
    sqs.send_message(QueueUrl=url, MessageBody="{}")  # the rule is spent: the next call goes through
    assert waiting(sqs, url) == 1


def test_a_crash_is_true_or_after():
    with pytest.raises(ValueError, match="after"):
        faults.Rule.parse({"service": "sqs", "operation": "SendMessage", "crash": "later"})
