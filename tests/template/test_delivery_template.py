"""The template's promises for delivery to controllers (DispatcherFunction, DeadlineWatchFunction)."""

from __future__ import annotations

import pytest

from tests.support.aws import load_template
from tests.template.test_template import events_of


@pytest.fixture(scope="module")
def resources() -> dict:
    return load_template()["Resources"]


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def _function(resources: dict, name: str) -> dict:
    return resources[name]["Properties"]


def test_the_dispatcher_gives_up_where_the_queue_does(resources):
    queue = resources["DeliveryQueue"]["Properties"]
    env = _function(resources, "DispatcherFunction")["Environment"]["Variables"]
    assert int(env["DELIVERY_MAX_ATTEMPTS"]) == int(queue["RedrivePolicy"]["maxReceiveCount"])


def test_the_delivery_queue_outwaits_six_dispatcher_timeouts(resources):
    # AWS: an SQS event source's queue visibility timeout should be at least six times the function timeout.
    queue = resources["DeliveryQueue"]["Properties"]
    assert int(queue["VisibilityTimeout"]) >= 6 * int(_function(resources, "DispatcherFunction")["Timeout"])


def test_the_queue_keeps_a_message_through_the_whole_retry_schedule(resources):
    from rightsdesk.routing import delivery

    queue = resources["DeliveryQueue"]["Properties"]
    attempts = int(queue["RedrivePolicy"]["maxReceiveCount"])
    schedule = sum(delivery.retry_delay(attempt) for attempt in range(1, attempts))
    assert schedule < int(queue["MessageRetentionPeriod"])


def test_the_dispatcher_reports_partial_batch_failures_in_small_batches(template):
    [event] = events_of(template, "DispatcherFunction").values()
    assert event["Type"] == "SQS" and event["Properties"]["Queue"] == {"Fn::GetAtt": ["DeliveryQueue", "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert int(event["Properties"]["BatchSize"]) <= 10


def test_the_deadline_watch_runs_hourly(resources):
    [event] = _function(resources, "DeadlineWatchFunction")["Events"].values()
    assert event["Type"] == "Schedule" and event["Properties"]["Schedule"] == "rate(1 hour)"


@pytest.mark.parametrize("name", ["DispatcherFunction", "DeadlineWatchFunction"])
def test_no_scans_and_no_deletes_of_requests(resources, name):
    actions = [
        action
        for policy in _function(resources, name)["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
        if "RightsTable" in str(statement["Resource"])
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]
    assert actions and not {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:*"} & set(actions)
