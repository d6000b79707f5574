"""`rightsdesk dlq ...`: what waits in the dead-letter queues, and sending it back for another try.

Messages in them can hold personal data (an SES event's recipients; our own queues' messages carry
ids only, rightsdesk.store.outbox, but a listing trusts no body): listing
shows ids only (message id, request id, mail id and kind, event; for a stream's failed batch its
shard and sequence numbers), never a body. Listing leaves the messages where they are.

A redrive moves messages back to the queue they came from, found with SQS's
ListDeadLetterSourceQueues: on AWS with StartMessageMoveTask (SQS moves them, at the rate given),
locally (moto has no move tasks) by receive, send, delete. Every consumer is idempotent, so a
message moved twice is handled once. Dead-letter queues fed by EventBridge or a stream (no source
queue) are not redriven here: docs/operations.md, DLQ redrive, says how to replay them. Each redrive
that moves something leaves one audit event naming the operator (rightsdesk.store.redrives), which
`rightsdesk dlq history` shows.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from rightsdesk.store import redrives
from rightsdesk_cli.context import Context
from rightsdesk_cli.errors import CliError
from rightsdesk_cli.output import JsonFlag, counted, emit, emit_history, note, table

app = typer.Typer(help="Dead-letter queues: list what waits (ids only), redrive it.", no_args_is_help=True)

LOCAL_PREFIX = "rightsdesk-local-"
DLQ_SUFFIX = "DeadLetterQueue"
# Top-level body fields that are ids or words, never personal data; nothing else of a body is shown.
SAFE_FIELDS = (
    "request_id",
    "event",
    "notice",
    "controller_id",
    "test_id",
    "incident_id",
    "doc",
    "version",
    "mail_id",
    "kind",
    "template",
)
PEEK_ROUNDS = 3

QueueArg = Annotated[
    str, typer.Argument(help="The queue's logical ID (DeliveryDeadLetterQueue) or its start (delivery).")
]


def _state(ctx: typer.Context, json_output: bool) -> Context:
    state: Context = ctx.find_root().obj
    state.json = state.json or json_output
    return state.connect()  # sets the endpoint and region (local run or the stack's)


def _sqs():
    import boto3

    return boto3.client("sqs")


def dead_letter_queues(state: Context) -> dict[str, str]:
    """Logical ID -> URL of every dead-letter queue of the target."""
    if state.local:
        urls = _sqs().list_queues(QueueNamePrefix=LOCAL_PREFIX).get("QueueUrls", [])
        found = {url.rsplit("/", 1)[1].removeprefix(LOCAL_PREFIX): url for url in urls}
    else:
        import boto3

        if not state.stack:
            raise CliError("which deployment? pass --stack NAME, or --local", code="no_target")
        pages = boto3.client("cloudformation").get_paginator("list_stack_resources").paginate(StackName=state.stack)
        found = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for page in pages
            for r in page["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::SQS::Queue"
        }
    return {name: url for name, url in sorted(found.items()) if name.endswith(DLQ_SUFFIX)}


def _resolve(state: Context, queue: str) -> tuple[str, str]:
    queues = dead_letter_queues(state)
    matches = [name for name in queues if name == queue] or [
        name for name in queues if name.lower().startswith(queue.lower())
    ]
    if len(matches) != 1:
        known = ", ".join(queues) or "none"
        raise CliError(f"no single dead-letter queue matches {queue!r} (known: {known})", code="unknown_queue")
    return matches[0], queues[matches[0]]


def describe(message: dict) -> dict[str, Any]:
    """What may be shown of one message: its ids, never its body's other contents."""
    shown: dict[str, Any] = {
        "message_id": message["MessageId"],
        "sent_at": int(message.get("Attributes", {}).get("SentTimestamp", 0)) // 1000 or None,
        "receives": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
    }
    try:
        body = json.loads(message.get("Body") or "")
    except ValueError:
        return shown
    if not isinstance(body, dict):
        return shown
    shown.update({field: str(body[field]) for field in SAFE_FIELDS if isinstance(body.get(field), (str, int))})
    ids = body.get("ids")  # a mail message names what it is about here (rightsdesk.store.outbox): ids only
    if isinstance(ids, dict):
        shown.update({field: str(ids[field]) for field in SAFE_FIELDS if isinstance(ids.get(field), (str, int))})
    batch = body.get("DDBStreamBatchInfo")
    if isinstance(batch, dict):  # a stream batch the function gave up on: where to replay it from
        shown["batch"] = f"{batch.get('shardId')}:{batch.get('startSequenceNumber')}-{batch.get('endSequenceNumber')}"
    return shown


def peek(url: str, limit: int) -> list[dict]:
    """Up to `limit` messages, left visible (VisibilityTimeout 0), each once."""
    seen: dict[str, dict] = {}
    rounds_without_news = 0
    while len(seen) < limit and rounds_without_news < PEEK_ROUNDS:
        messages = (
            _sqs()
            .receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit),
                VisibilityTimeout=0,
                MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            )
            .get("Messages", [])
        )
        news = [m for m in messages if m["MessageId"] not in seen]
        rounds_without_news = 0 if news else rounds_without_news + 1
        for message in news[: limit - len(seen)]:
            seen[message["MessageId"]] = describe(message)
    return list(seen.values())


def depth(url: str) -> int:
    attributes = _sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


@app.command("list")
def list_(
    ctx: typer.Context,
    queue: Annotated[
        str | None, typer.Argument(help="One queue to list the messages of; all queues' depths without.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Messages to show at most.")] = 50,
    json_output: JsonFlag = False,
) -> None:
    """Dead-letter queues and their depth; with a queue, its messages by id (never their contents)."""
    state = _state(ctx, json_output)
    if queue is None:
        data = {"queues": [{"queue": name, "messages": depth(url)} for name, url in dead_letter_queues(state).items()]}
        emit(state, data, lambda: table(["queue", "messages"], ([q["queue"], q["messages"]] for q in data["queues"])))
        return
    name, url = _resolve(state, queue)
    messages = peek(url, limit)
    data = {"queue": name, "messages_total": depth(url), "messages": messages}
    columns = ["message_id", "receives", *[f for f in (*SAFE_FIELDS, "batch") if any(f in m for m in messages)]]
    emit(
        state,
        data,
        lambda: table(
            columns,
            ([m.get(c) for c in columns] for m in messages),
            title=f"{name}: {counted(data['messages_total'], 'message', 'messages')}",
        ),
    )


def _source_of(url: str) -> str:
    sources = _sqs().list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
    if len(sources) != 1:
        raise CliError(
            "this dead-letter queue is fed by EventBridge or a stream, not by a queue: replay it as "
            "docs/operations.md (DLQ redrive) says",
            code="no_source_queue",
        )
    return sources[0]


def _arn(url: str) -> str:
    return _sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def move_by_hand(source: str, target: str, limit: int | None) -> int:
    """Receive, send to the source queue, delete; the local run's way (moto has no move tasks)."""
    moved = 0
    while limit is None or moved < limit:
        batch = (
            _sqs()
            .receive_message(
                QueueUrl=source,
                MaxNumberOfMessages=10 if limit is None else min(10, limit - moved),
                VisibilityTimeout=60,
                MessageAttributeNames=["All"],
            )
            .get("Messages", [])
        )
        if not batch:
            break
        for message in batch:
            extra = {"MessageAttributes": message["MessageAttributes"]} if message.get("MessageAttributes") else {}
            _sqs().send_message(QueueUrl=target, MessageBody=message["Body"], **extra)
            _sqs().delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


@app.command("redrive")
def redrive(
    ctx: typer.Context,
    queue: QueueArg,
    max_messages: Annotated[
        int | None, typer.Option("--max", min=1, help="Move at most this many (default: all).")
    ] = None,
    rate: Annotated[
        int | None, typer.Option("--rate", min=1, max=500, help="Messages per second (AWS move task).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Send a dead-letter queue's messages back to the queue they came from, for another try."""
    state = _state(ctx, json_output)
    name, url = _resolve(state, queue)
    target = _source_of(url)
    waiting = depth(url)
    if not yes and not state.json:
        typer.confirm(
            f"move {max_messages or waiting} of {waiting} messages from {name} back to {target.rsplit('/', 1)[1]}?",
            abort=True,
        )
    operator = state.operator  # who, before the first move: nothing is moved unattributed
    to = target.rsplit("/", 1)[1]
    # A move task moves everything; a partial redrive (and the local run's: moto has none) is by hand.
    if state.local or max_messages is not None:
        moved = move_by_hand(url, target, max_messages)
        if moved:  # nothing moved, nothing changed: no event
            redrives.record(name, to=to, mode=redrives.BY_HAND, messages=moved, actor=operator)
        data = {"queue": name, "to": to, "moved": moved}
        emit(state, data, lambda: f"moved {counted(moved, 'message', 'messages')} from {name} back to {data['to']}")
        return
    options: dict[str, Any] = {"SourceArn": _arn(url), "DestinationArn": _arn(target)}
    if rate:
        options["MaxNumberOfMessagesPerSecond"] = rate
    handle = _sqs().start_message_move_task(**options)["TaskHandle"]
    redrives.record(name, to=to, mode=redrives.MOVE_TASK, messages=waiting, actor=operator)
    data = {"queue": name, "to": target.rsplit("/", 1)[1], "task_handle": handle, "messages": waiting}
    emit(
        state,
        data,
        lambda: (
            f"SQS is moving {counted(waiting, 'message', 'messages')} from {name} back to {data['to']} (task {handle})"
        ),
    )
    note(state, f"follow it with: aws sqs list-message-move-tasks --source-arn {options['SourceArn']}")


@app.command("history")
def history(
    ctx: typer.Context,
    queue: QueueArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Events to show at most.")] = 50,
    json_output: JsonFlag = False,
) -> None:
    """The queue's redrives from its audit trail, newest first: who, where to, how and how many."""
    state = _state(ctx, json_output)
    name, _ = _resolve(state, queue)
    emit_history(state, ("queue", name), redrives.history(name, limit), ("cause",))
