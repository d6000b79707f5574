"""ConnectorWorkerFunction: the connector state machine's tasks (ConnectorTaskQueue) -> the
execution's steps (rightsdesk.connectors.execution), answered with SendTaskSuccess or
SendTaskFailure; and, every few minutes, the erasures whose grace period has passed, started.

Each message names a step by ids only (`step`, `request_id`, `execution_id`, `connector_id`) and
carries the task token. A step that fails and may succeed later comes back on the queue after the
retry schedule's delay (its visibility timeout, on the injectable clock locally) and is reported as
a batch item failure; one that cannot succeed fails the task, and the state machine parks the run.
An HTTP connector's step whose product answered 202 is not answered here: the product's callback
(ConnectorCallbackFunction) answers it, and the schedule fails it when its deadline passes.
Steps are idempotent (a step recorded done answers what it recorded), so a redelivered message does
no work twice; an answer for a run that was stopped meanwhile is refused by Step Functions and
dropped here. Logs name ids, step words and error types, never an identity or a token.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from rightsdesk.connectors import execution
from rightsdesk.platform import aws_clients, config, handler_support

logger = Logger()
metrics = Metrics()
# A step waiting for its retry is no function error: a batch whose every record waits is answered
# with every record failed, not raised (Lambda's Errors metric stays for crashes).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

STEPS = ("plan", "connector", "finish", "park")
# Step Functions' answers when the task is gone: the run was stopped, or the step answered already.
# A failed task's error name carries the reason (`rightsdesk.access_denied`): the Cause is not passed
# on everywhere (moto drops it), the name is, and the state machine's Catch hands it to the park step.
ERROR_PREFIX = execution.TASK_ERROR_PREFIX
GONE = execution.TASK_GONE


def _answer(method: str, **arguments: Any) -> None:
    try:
        getattr(aws_clients.client("stepfunctions"), method)(**arguments)
    except Exception as error:
        code = ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")
        if code not in GONE:
            raise
        logger.info("task gone", extra={"answer": method, "code": code})


def _step(message: dict[str, Any], attempt: int) -> Any:
    step, request_id, execution_id = message["step"], message["request_id"], message["execution_id"]
    if step == "plan":
        return execution.plan_step(request_id, execution_id, attempt=attempt)
    if step == "connector":
        return execution.connector_step(
            request_id, execution_id, message["connector_id"], attempt=attempt, task_token=message["token"]
        )
    if step == "finish":
        from rightsdesk.outbound import connector_runs

        return {"status": connector_runs.finish(request_id, execution_id).status}
    error = message.get("error") if isinstance(message.get("error"), dict) else {}
    reason = str(error.get("Error") or "failed").removeprefix(ERROR_PREFIX)
    parked = execution.park(request_id, execution_id, reason)
    if parked is not None and parked.status == execution.PARKED:
        metrics.add_metric(name="ExecutionParked", unit=MetricUnit.Count, value=1)
    return {"status": parked.status if parked else None}


def record_handler(record: SQSRecord) -> None:
    attempt = int(record.attributes.approximate_receive_count or 1)
    message = json.loads(record.body)
    if not isinstance(message, dict) or message.get("step") not in STEPS or "token" not in message:
        logger.error("malformed connector task", extra={"message_id": record.message_id})
        return  # nothing to answer: the state machine's task times out and parks the run
    token = message["token"]
    where = {
        "step": message["step"],
        "request_id": message.get("request_id"),
        "execution_id": message.get("execution_id"),
        "connector_id": message.get("connector_id"),
        "attempt": attempt,
    }
    try:
        output = _step(message, attempt)
    except execution.StepSkipped:
        logger.info("step skipped: the run is not running", extra=where)
        return
    except execution.StepAwaitingCallback:
        # The product answered 202: the callback route answers the task (or the deadline fails it).
        logger.info("step awaits the product's callback", extra=where)
        metrics.add_metric(name="ConnectorStepAwaitingCallback", unit=MetricUnit.Count, value=1)
        return
    except execution.RetryStep as retry:
        handler_support.come_back_after(config.connector_task_queue_url(), record.receipt_handle, retry.delay)
        logger.warning("step retried", extra={**where, "cause": retry.code, "retry_in_seconds": retry.delay})
        metrics.add_metric(name="ConnectorStepRetried", unit=MetricUnit.Count, value=1)
        raise
    except execution.StepFailed as failed:
        logger.warning("step failed", extra={**where, "cause": failed.code})
        metrics.add_metric(name="ConnectorStepFailed", unit=MetricUnit.Count, value=1)
        _answer("send_task_failure", taskToken=token, error=ERROR_PREFIX + failed.code, cause=failed.code)
        return
    except Exception as error:
        # The type only: messages of library errors can quote the data they choked on.
        logger.error("step error", extra={**where, "error_type": type(error).__name__})
        if attempt >= execution.MAX_ATTEMPTS:
            _answer("send_task_failure", taskToken=token, error=ERROR_PREFIX + "step_error", cause=type(error).__name__)
            return
        handler_support.come_back_after(
            config.connector_task_queue_url(), record.receipt_handle, execution.RETRY.delay(attempt)
        )
        raise
    _answer("send_task_success", taskToken=token, output=json.dumps(output, separators=(",", ":")))
    logger.info("step done", extra=where)


def _scheduled(event: dict) -> bool:
    return event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events"


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> Any:
    if _scheduled(event):
        from rightsdesk.connectors import callbacks

        started = execution.begin_due()
        kept = execution.erase_kept_records_due()
        timed_out = callbacks.expire_due()
        logger.info(
            "grace periods ended",
            extra={"started": len(started), "kept_records_erased": kept, "callbacks_timed_out": timed_out},
        )
        return {"started": started, "kept_records_erased": kept, "callbacks_timed_out": timed_out}
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
