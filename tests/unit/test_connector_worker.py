"""ConnectorWorkerFunction's handler: each step's outcome becomes the right answer to Step Functions
(success, failure with the reason in the error name, nothing for a stopped run), a step to retry
comes back on the queue after the schedule's delay as a batch item failure, and the park step
takes its reason from the error the state machine caught. The steps themselves are stubbed here
(tests/unit/test_connector_execution.py tests them)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rightsdesk.connectors import execution

ROOT = Path(__file__).resolve().parents[2]


def _context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="rightsdesk-test-ConnectorWorkerFunction",
        memory_limit_in_mb=512,
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:eu-central-1:123456789012:function:rightsdesk-test-ConnectorWorkerFunction",
        aws_request_id="test-request",
        get_remaining_time_in_millis=lambda: 60_000,
    )


class Recorder:
    """Stands for the Step Functions and SQS clients: remembers every call."""

    def __init__(self, gone: bool = False):
        self.calls: list[tuple[str, dict]] = []
        self.gone = gone

    def __getattr__(self, name: str) -> Any:
        def call(**arguments: Any) -> dict:
            self.calls.append((name, arguments))
            if self.gone and name.startswith("send_task"):
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "TaskDoesNotExist", "Message": "gone"}}, name)
            return {}

        return call


@pytest.fixture
def worker(monkeypatch):
    monkeypatch.setenv("CONNECTOR_TASK_QUEUE_URL", "https://sqs.eu-central-1.amazonaws.com/123456789012/tasks")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "rightsdesk-test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "connector-worker")
    spec = importlib.util.spec_from_file_location("_connector_worker_app", ROOT / "functions/connector_worker/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recorder = Recorder()
    monkeypatch.setattr(module.aws_clients, "client", lambda service: recorder)
    monkeypatch.setattr(module.handler_support.aws_clients, "client", lambda service: recorder)
    monkeypatch.setenv("CONNECTOR_TASK_QUEUE_URL", "https://sqs.eu-central-1.amazonaws.com/123456789012/tasks")
    module.recorder = recorder
    return module


def event(step: str, receive_count: int = 1, **fields: Any) -> dict:
    body = {"step": step, "request_id": "req_1", "execution_id": "ex_req_1_1_abc", "token": "tok-1", **fields}
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "rh-1",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:tasks",
                "awsRegion": "eu-central-1",
            }
        ]
    }


def answers(worker) -> list[tuple[str, dict]]:
    return [(name, args) for name, args in worker.recorder.calls if name.startswith("send_task")]


def test_a_done_step_answers_success_with_its_output(worker, monkeypatch):
    monkeypatch.setattr(
        execution, "connector_step", lambda r, e, c, attempt, task_token: {"connector_id": c, "erased": 2}
    )
    result = worker.lambda_handler(event("connector", connector_id="users"), _context())
    assert result == {"batchItemFailures": []}
    assert answers(worker) == [
        ("send_task_success", {"taskToken": "tok-1", "output": '{"connector_id":"users","erased":2}'})
    ]


def test_a_step_to_retry_comes_back_after_the_schedules_delay(worker, monkeypatch):
    seen = []

    def failing(request_id, execution_id, connector_id, attempt, task_token):
        seen.append(attempt)
        raise execution.RetryStep("store_unavailable", execution.RETRY.delay(attempt))

    monkeypatch.setattr(execution, "connector_step", failing)
    result = worker.lambda_handler(event("connector", receive_count=3, connector_id="users"), _context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert seen == [3]
    assert ("change_message_visibility", {
        "QueueUrl": "https://sqs.eu-central-1.amazonaws.com/123456789012/tasks",
        "ReceiptHandle": "rh-1",
        "VisibilityTimeout": execution.RETRY.delay(3),
    }) in worker.recorder.calls  # fmt: skip
    assert answers(worker) == []


def test_a_step_that_cannot_succeed_fails_the_task_naming_the_reason(worker, monkeypatch):
    def failed(*args, **kwargs):
        raise execution.StepFailed("parked_too_many")

    monkeypatch.setattr(execution, "connector_step", failed)
    worker.lambda_handler(event("connector", connector_id="users"), _context())
    assert answers(worker) == [
        ("send_task_failure", {"taskToken": "tok-1", "error": "rightsdesk.parked_too_many", "cause": "parked_too_many"})
    ]


def test_a_stopped_run_gets_no_answer(worker, monkeypatch):
    def skipped(*args, **kwargs):
        raise execution.StepSkipped("ex")

    monkeypatch.setattr(execution, "connector_step", skipped)
    assert worker.lambda_handler(event("connector", connector_id="users"), _context()) == {"batchItemFailures": []}
    assert answers(worker) == []


def test_a_step_awaiting_the_products_callback_gets_no_answer_and_is_not_retried(worker, monkeypatch):
    given = []

    def awaiting(request_id, execution_id, connector_id, attempt, task_token):
        given.append(task_token)
        raise execution.StepAwaitingCallback(connector_id)

    monkeypatch.setattr(execution, "connector_step", awaiting)
    assert worker.lambda_handler(event("connector", connector_id="users"), _context()) == {"batchItemFailures": []}
    assert given == ["tok-1"], "the step gets the task token its callback answers with"
    assert answers(worker) == []
    assert not [c for c in worker.recorder.calls if c[0] == "change_message_visibility"]


def test_an_unexpected_error_is_retried_then_fails_the_task(worker, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyError("ada@example.org")  # its message never reaches the answer

    monkeypatch.setattr(execution, "plan_step", crash)
    retried = worker.lambda_handler(event("plan", receive_count=1), _context())
    assert retried == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    worker.lambda_handler(event("plan", receive_count=execution.MAX_ATTEMPTS), _context())
    assert answers(worker) == [
        ("send_task_failure", {"taskToken": "tok-1", "error": "rightsdesk.step_error", "cause": "KeyError"})
    ]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ({"Error": "rightsdesk.AccessDenied", "Cause": ""}, "AccessDenied"),
        ({"Error": "States.Timeout"}, "States.Timeout"),
        (None, "failed"),
    ],
)
def test_the_park_step_takes_its_reason_from_the_caught_error(worker, monkeypatch, error, reason):
    parked = []
    monkeypatch.setattr(
        execution, "park", lambda r, e, why: parked.append(why) or SimpleNamespace(status=execution.PARKED)
    )
    worker.lambda_handler(event("park", error=error), _context())
    assert parked == [reason]
    assert answers(worker)[0][0] == "send_task_success"


def test_an_answer_to_a_task_that_is_gone_is_dropped(worker, monkeypatch):
    worker.recorder.gone = True
    monkeypatch.setattr(execution, "connector_step", lambda *a, **k: {"connector_id": "users"})
    assert worker.lambda_handler(event("connector", connector_id="users"), _context()) == {"batchItemFailures": []}


def test_the_schedule_starts_the_runs_whose_grace_period_ended(worker, monkeypatch):
    monkeypatch.setattr(execution, "begin_due", lambda: ["req_1", "req_2"])
    monkeypatch.setattr(execution, "erase_kept_records_due", lambda: 3)
    from rightsdesk.connectors import callbacks

    monkeypatch.setattr(callbacks, "expire_due", lambda: 1)
    sample = json.loads((ROOT / "events/connector_worker/schedule.json").read_text())
    assert worker.lambda_handler(sample, _context()) == {
        "started": ["req_1", "req_2"],
        "kept_records_erased": 3,
        "callbacks_timed_out": 1,
    }
