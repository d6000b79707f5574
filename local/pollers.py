"""Event sources other than the API: SQS queues, DynamoDB streams, schedules and EventBridge rules,
one thread each.

An SQS poller hands several batches to its function at once (up to its containers, as Lambda
scales pollers); a stream's shards are read one batch at a time, in order, as Lambda does.

A failing invocation never ends a thread; it is logged by exception type only, since messages and
stream records hold personal data.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from local.functions import FunctionError, FunctionUnavailable, LoadedFunction
from local.intrinsics import Resolver
from local.patterns import any_match, parse_filters, pattern_of
from local.resources import Resources
from local.stream_records import StreamRecords

log = logging.getLogger("local")

SCHEDULE_TYPES = ("Schedule", "ScheduleV2")


class Worker(threading.Thread):
    def __init__(self, name: str, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.stop = stop
        # Polls finished so far; a poll that starts after a moment and ends has seen everything
        # visible at that moment (drain()).
        self.polls = 0
        self.polled = threading.Condition()
        self.hurry = threading.Event()  # set by drain(): poll without waiting for messages to arrive

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.tick()
            except Exception as error:  # noqa: BLE001 - a poller outlives any one failure
                if self.stop.is_set():
                    return
                log.warning("%s: %s while polling; retrying", self.name, type(error).__name__)
                self.stop.wait(1)
            with self.polled:
                self.polls += 1
                self.polled.notify_all()

    def tick(self) -> None:
        raise NotImplementedError


def _invoke(function: LoadedFunction, event: dict) -> tuple[bool, Any]:
    try:
        return True, function.invoke(event)
    except (FunctionError, FunctionUnavailable):
        return False, None


def _failed_ids(result: Any, ids: list[str]) -> set[str]:
    """ReportBatchItemFailures: the ids the handler reported, or all of them if the answer is malformed."""
    if not isinstance(result, dict) or not result.get("batchItemFailures"):
        return set()
    reported = {item.get("itemIdentifier") if isinstance(item, dict) else None for item in result["batchItemFailures"]}
    return reported if reported <= set(ids) else set(ids)


def drain(workers: list[Worker], timeout: float = 20.0) -> bool:
    """Wait until each queue and stream poller has finished two polls since the call, and every
    batch those polls received has been answered: the second began after the call, so whatever was
    visible then has been handed to its function and answered (one hop: what those invocations send
    on may still be on its way). False on timeout."""
    pollers = [w for w in workers if isinstance(w, (SqsPoller, StreamPoller, EventRulePoller)) and w.is_alive()]
    wanted = {id(w): w.polls + 2 for w in pollers}
    for worker in pollers:
        worker.hurry.set()
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        for worker in pollers:
            with worker.polled:
                while worker.polls < wanted[id(worker)] and not deadline.is_set() and not worker.stop.is_set():
                    worker.polled.wait(0.1)
            # Batches of those polls may still run beside the poller: wait for their answers too.
            if isinstance(worker, SqsPoller):
                worker.handed_on(worker.dispatched, deadline)
        return not deadline.is_set()
    finally:
        timer.cancel()
        for worker in pollers:
            worker.hurry.clear()


# ---------------------------------------------------------------------------------------- SQS
class SqsPoller(Worker):
    def __init__(
        self,
        function: LoadedFunction,
        source: str,
        queue_url: str,
        queue_arn: str,
        properties: dict,
        sqs: Any,
        region: str,
        stop: threading.Event,
    ):
        super().__init__(f"{source} -> {function.spec.logical_id}", stop)
        self.function = function
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        # One receive returns at most 10; Lambda's larger batches and batching window add nothing locally.
        self.batch_size = max(1, min(int(properties.get("BatchSize", 10)), 10))
        self.report_failures = "ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or [])
        self.patterns = parse_filters(properties.get("FilterCriteria"))
        self.sqs = sqs
        self.region = region
        # Fault injection (POST /_dev/faults): hold the queue, or let the next invocation die
        # after its first n records, as a Lambda environment killed mid-batch would.
        self.paused = False
        self.held = threading.Event()  # set while paused and no receive or batch is in flight
        self.crash_after: int | None = None
        # Batches handed to the function at once: its containers, the mapping's MaximumConcurrency
        # if lower, one for a FIFO queue (its order is the point).
        limit = int((properties.get("ScalingConfig") or {}).get("MaximumConcurrency") or function.max_containers)
        self.concurrency = 1 if queue_url.endswith(".fifo") else max(1, min(limit, function.max_containers))
        self.slots = threading.Semaphore(self.concurrency)
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=self.name)
        self.batches = threading.Condition()
        self.dispatched = 0  # batches handed on so far, numbered from 1
        self.in_flight: set[int] = set()  # their numbers while their invocation runs

    def tick(self) -> None:
        if self.paused:
            with self.batches:
                if not self.in_flight:
                    self.held.set()
            self.stop.wait(0.1)
            return
        self.held.clear()
        # A receive only when a batch can be handed on at once: never more batches in flight than
        # the function has containers (or the mapping's MaximumConcurrency), as Lambda scales pollers.
        while not self.slots.acquire(timeout=0.25):
            if self.stop.is_set() or self.paused:
                return
        try:
            messages = (
                self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.batch_size,
                    WaitTimeSeconds=0 if self.hurry.is_set() else 1,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages")
                or []
            )
        except BaseException:
            self.slots.release()
            raise
        if not messages:
            self.slots.release()
            return
        crash_after, self.crash_after = self.crash_after, None
        with self.batches:
            self.dispatched += 1
            number = self.dispatched
            self.in_flight.add(number)
        if self.concurrency == 1:
            self._batch(number, messages, crash_after)
        else:
            self._executor.submit(self._batch, number, messages, crash_after)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._executor.shutdown(wait=False)

    def handed_on(self, upto: int, until: threading.Event) -> bool:
        """Wait until every batch up to number `upto` has been answered (drain())."""
        with self.batches:
            while any(number <= upto for number in self.in_flight):
                if until.is_set() or self.stop.is_set():
                    return False
                self.batches.wait(0.1)
        return True

    def _batch(self, number: int, messages: list[dict], crash_after: int | None) -> None:
        try:
            self._deliver(messages, crash_after)
        except Exception as error:  # noqa: BLE001 - unanswered messages return after the visibility timeout
            if not self.stop.is_set():
                log.warning("%s: %s while handing on a batch", self.name, type(error).__name__)
        finally:
            with self.batches:
                self.in_flight.discard(number)
                self.batches.notify_all()
            self.slots.release()

    def _deliver(self, messages: list[dict], crash_after: int | None) -> None:
        records = [self._record(message) for message in messages]
        deliver = [record for record in records if any_match(self.patterns, _sqs_filter_view(record))]
        failed: set[str] = set()
        if deliver:
            ids = [record["messageId"] for record in deliver]
            if crash_after is None:
                ok, result = _invoke(self.function, {"Records": deliver})
            else:
                # The first records ran; then the invocation died and reported nothing, so every
                # message of the batch returns after the queue's visibility timeout.
                _invoke(self.function, {"Records": deliver[:crash_after]})
                ok, result = False, None
                log.info("%s: injected crash after %d of %d records", self.name, crash_after, len(deliver))
            if not ok:
                failed = set(ids)
            elif self.report_failures:
                failed = _failed_ids(result, ids)
            if failed:
                log.info(
                    "%s: %d of %d messages failed; they return after the visibility timeout",
                    self.name,
                    len(failed),
                    len(deliver),
                )
        # Messages the filter drops are deleted too, as Lambda does.
        done = [m for m, r in zip(messages, records, strict=True) if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def _record(self, message: dict) -> dict:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": base64.b64encode(value["BinaryValue"]).decode() if "BinaryValue" in value else None,
                    "stringListValues": value.get("StringListValues", []),
                    "binaryListValues": value.get("BinaryListValues", []),
                    "dataType": value.get("DataType"),
                }
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }


def _sqs_filter_view(record: dict) -> dict:
    # Lambda filters on the parsed body when the body is JSON, on the plain string otherwise.
    try:
        body = json.loads(record["body"])
    except ValueError:
        return record
    return {**record, "body": body}


# ---------------------------------------------------------------------------------------- streams
class StreamPoller(Worker):
    LOCAL_MAX_RETRIES = 3  # Lambda retries until the record expires (24 h); locally that would wedge the shard.

    def __init__(
        self,
        function: LoadedFunction,
        source: str,
        stream_arn: str,
        properties: dict,
        streams: Any,
        region: str,
        stop: threading.Event,
    ):
        super().__init__(f"{source} -> {function.spec.logical_id}", stop)
        self.function = function
        self.stream_arn = stream_arn
        self.batch_size = max(1, min(int(properties.get("BatchSize", 100)), 1000))
        self.report_failures = "ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or [])
        self.patterns = parse_filters(properties.get("FilterCriteria"))
        retries = int(properties.get("MaximumRetryAttempts", -1))
        self.max_retries = retries if retries >= 0 else self.LOCAL_MAX_RETRIES
        self.bisect = str(properties.get("BisectBatchOnFunctionError", False)).lower() == "true"
        self.streams = streams  # shards and iterators; the records come from self.records
        self.records = StreamRecords(streams.meta.endpoint_url, region)
        self.region = region
        # DestinationConfig.OnFailure (an SQS queue of the template): where an abandoned batch's
        # coordinates go. Set by build_workers, which knows the queues.
        self.on_failure: tuple[Any, str] | None = None
        self.iterators: dict[str, str | None] = {}
        self._polls = 0

    def prime(self) -> None:
        """Take LATEST iterators now, so every write after start-up is delivered."""
        self._refresh_shards("LATEST")

    def _refresh_shards(self, position: str) -> None:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            if shard["ShardId"] not in self.iterators:
                self.iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=position
                )["ShardIterator"]

    def tick(self) -> None:
        self._polls += 1
        if self._polls % 40 == 0:
            self._refresh_shards("TRIM_HORIZON")  # shards born after start-up are read from their start
        delivered = False
        for shard_id, iterator in list(self.iterators.items()):
            if iterator is None:
                continue
            answer = self.records.get_records(iterator, self.batch_size)
            self.iterators[shard_id] = answer.get("NextShardIterator")
            records = [self._record(raw) for raw in answer.get("Records") or []]
            if records:
                delivered = True
                self._deliver([r for r in records if any_match(self.patterns, r)], shard_id)
        if not delivered and not self.hurry.is_set():
            self.stop.wait(0.25)

    def _deliver(self, records: list[dict], shard_id: str) -> None:
        """Lambda's stream semantics: retry the batch (from the first reported failure), split it
        in two on errors when BisectBatchOnFunctionError is set, give up after MaximumRetryAttempts."""
        pending = [(records, 0)] if records else []  # all filtered out: Lambda never invokes with an empty batch
        while pending and not self.stop.is_set():
            batch, attempt = pending.pop(0)
            ok, result = _invoke(self.function, {"Records": batch})
            if ok:
                numbers = [r["dynamodb"]["SequenceNumber"] for r in batch]
                failed = _failed_ids(result, numbers) if self.report_failures else set()
                if not failed:
                    continue
                batch = batch[min(numbers.index(n) for n in failed) :]
            if attempt >= self.max_retries:
                self._abandon(batch, shard_id, attempt + 1)
                continue
            self.stop.wait(min(0.1 * 2**attempt, 1.0))
            if not ok and self.bisect and len(batch) > 1:
                half = len(batch) // 2
                pending[:0] = [(batch[:half], attempt + 1), (batch[half:], attempt + 1)]
            else:
                pending.insert(0, (batch, attempt + 1))

    def _abandon(self, batch: list[dict], shard_id: str, invocations: int) -> None:
        log.warning("%s: gave up on %d records after %d invocations", self.name, len(batch), invocations)
        if self.on_failure is None:
            return
        sqs, queue_url = self.on_failure
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        function_arn = f"arn:aws:lambda:{self.region}:{self.function.account_id}:function:{self.function.spec.name}"
        # Lambda's on-failure record: where the batch was, never the records themselves.
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invocations,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))

    def _record(self, raw: dict) -> dict:
        # Already as Lambda delivers it (local/stream_records.py), and this poller's own copy.
        raw.update(eventVersion="1.1", awsRegion=self.region, eventSourceARN=self.stream_arn)
        return raw


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------- schedules
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def interval_seconds(expression: str) -> float | None:
    """Seconds between runs for rate(...); cron(...) runs hourly locally, a deliberate approximation
    (no cron parser here; every schedule in the template is hourly or faster). at(...) never runs."""
    expression = expression.strip()
    match = _RATE.match(expression)
    if match:
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]
    if expression.startswith("cron("):
        return 3600.0
    return None


def schedule_expression(properties: dict) -> str:
    return str(properties.get("Schedule") or properties.get("ScheduleExpression") or "")


def schedule_enabled(properties: dict) -> bool:
    if str(properties.get("Enabled", True)).lower() == "false":
        return False
    return str(properties.get("State", "ENABLED")).upper() == "ENABLED"


def scheduled_event(
    function: LoadedFunction, source: str | None, properties: dict, region: str, account_id: str
) -> Any:
    """The event a schedule delivers: its Input when it has one, else EventBridge's scheduled event."""
    given = properties.get("Input")
    if given is not None:
        return json.loads(given) if isinstance(given, str) else given
    rule = f"{function.spec.name}-{source or 'manual'}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{rule}"],
        "detail": {},
    }


class ScheduleTimer(Worker):
    def __init__(
        self,
        function: LoadedFunction,
        source: str,
        properties: dict,
        interval: float,
        region: str,
        account_id: str,
        stop: threading.Event,
    ):
        super().__init__(f"{source} -> {function.spec.logical_id}", stop)
        self.function = function
        self.source = source
        self.properties = properties
        self.interval = interval
        self.region = region
        self.account_id = account_id

    def tick(self) -> None:
        # Like EventBridge, the first run comes one period after the rule exists.
        if not self.stop.wait(self.interval):
            event = scheduled_event(self.function, self.source, self.properties, self.region, self.account_id)
            _invoke(self.function, event)


# ---------------------------------------------------------------------------------------- EventBridge
# Lambda's asynchronous invocation retries a failed event twice by default (EventInvokeConfig
# MaximumRetryAttempts), about a minute and then two apart; locally a second and then two.
DEFAULT_ASYNC_RETRIES = 2
RETRY_DELAY_SECONDS = 1


class EventRulePoller(Worker):
    """An EventBridge rule whose target is a function, delivered as EventBridge and Lambda's
    asynchronous invocation do it. moto holds the rule, on its bus, with a queue of the runner's as
    the target: moto's own matcher (local.patterns) decides which PutEvents entries match, and moto
    puts each matching event on that queue. This poller hands each event to the function alone,
    with the runner's clock as the event's `time` (the clock POST /_dev/clock moves); a failed event
    is retried (EventInvokeConfig MaximumRetryAttempts, default 2) and then sent to the function's
    OnFailure destination, else the rule's DeadLetterConfig, as Lambda's failure record (the event
    under `requestPayload`). A function's answer is not looked at: an async invocation has none."""

    def __init__(
        self,
        function: LoadedFunction,
        source: str,
        queue_url: str,
        retries: int,
        dead_letter_url: str | None,
        sqs: Any,
        region: str,
        account_id: str,
        stop: threading.Event,
    ):
        super().__init__(f"{source} (EventBridge) -> {function.spec.logical_id}", stop)
        self.function = function
        self.queue_url = queue_url
        self.retries = retries
        self.dead_letter_url = dead_letter_url
        self.sqs = sqs
        self.region = region
        self.account_id = account_id

    def tick(self) -> None:
        messages = (
            self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0 if self.hurry.is_set() else 1,
                MessageSystemAttributeNames=["All"],
            ).get("Messages")
            or []
        )
        for message in messages:
            self._deliver(message)

    def _deliver(self, message: dict) -> None:
        event = json.loads(message["Body"])
        event["time"] = _runner_now()
        ok, _ = _invoke(self.function, event)
        attempts = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
        if not ok and attempts <= self.retries:
            log.info("%s: an event failed (attempt %d); retried", self.name, attempts)
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=RETRY_DELAY_SECONDS * attempts,
            )
            return
        if not ok:
            log.warning("%s: an event failed %d times; to the dead-letter queue", self.name, attempts)
            if self.dead_letter_url:
                self.sqs.send_message(
                    QueueUrl=self.dead_letter_url, MessageBody=json.dumps(self._failure(event, attempts))
                )
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _failure(self, event: dict, attempts: int) -> dict:
        arn = f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function.spec.name}"
        return {
            "version": "1.0",
            "timestamp": _runner_now(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"{arn}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        }


def _runner_now() -> str:
    from rightsdesk.kernel import clock  # the runner's clock, as every invocation gets it

    return clock.isoformat(clock.now())


def event_rule_poller(
    function: LoadedFunction,
    source: str,
    properties: dict,
    resources: Resources,
    *,
    sqs: Any,
    events: Any,
    region: str,
    account_id: str,
    stop: threading.Event,
) -> EventRulePoller:
    """The rule in moto, on its bus, with a queue of the runner's as its target, and its poller."""
    pattern = properties["Pattern"]
    pattern_of(pattern)  # a filter the local run cannot match as AWS does fails here, loudly
    bus = str(properties.get("EventBusName") or "default")
    rule = f"{function.spec.logical_id}-{source}"
    url = sqs.create_queue(QueueName=f"rightsdesk-local-rule-{rule}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "local-runner", "Arn": arn}])
    invoke_config = function.spec.invoke_config
    retries = int(invoke_config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
    on_failure = ((invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    dead_letter = on_failure or (properties.get("DeadLetterConfig") or {}).get("Arn")
    dead_letter_url = resources.queue_url_by_arn(dead_letter) if isinstance(dead_letter, str) else None
    return EventRulePoller(function, source, url, retries, dead_letter_url, sqs, region, account_id, stop)


# ---------------------------------------------------------------------------------------- wiring
def build_workers(
    functions: dict[str, LoadedFunction],
    resources: Resources,
    resolver: Resolver,
    *,
    sqs: Any,
    streams: Any,
    region: str,
    account_id: str,
    schedules: bool,
    stop: threading.Event,
    events: Any = None,
) -> list[Worker]:
    workers: list[Worker] = []
    for function in functions.values():
        for source, event in function.spec.events.items():
            kind = event.get("Type")
            if kind not in ("SQS", "DynamoDB", "EventBridgeRule", *SCHEDULE_TYPES):
                continue  # Api events belong to the gateway; other types have no local source
            properties = resolver.resolve(event.get("Properties") or {})
            label = f"{function.spec.logical_id}.{source}"
            if str(properties.get("Enabled", True)).lower() == "false":
                log.debug("%s: disabled in the template", label)
                continue
            if not function.available:
                log.warning("%s: function unavailable, its %s source is not polled", label, kind)
                continue
            if kind == "EventBridgeRule":
                if events is None:
                    log.warning("%s: no EventBridge client; the rule is not routed", label)
                    continue
                workers.append(
                    event_rule_poller(
                        function,
                        source,
                        properties,
                        resources,
                        sqs=sqs,
                        events=events,
                        region=region,
                        account_id=account_id,
                        stop=stop,
                    )
                )
            elif kind == "SQS":
                url = resources.queue_url_by_arn(properties["Queue"])
                if url is None:
                    log.warning("%s: queue %s is not in the template; not polled", label, properties["Queue"])
                    continue
                workers.append(SqsPoller(function, source, url, properties["Queue"], properties, sqs, region, stop))
            elif kind == "DynamoDB":
                if resources.table_by_stream_arn(properties["Stream"]) is None:
                    log.warning("%s: stream is not a table's in the template; not polled", label)
                    continue
                poller = StreamPoller(function, source, properties["Stream"], properties, streams, region, stop)
                on_failure = ((properties.get("DestinationConfig") or {}).get("OnFailure")) or {}
                if on_failure.get("Destination"):
                    url = resources.queue_url_by_arn(on_failure["Destination"])
                    if url is None:
                        log.warning("%s: OnFailure destination is not a queue of the template; ignored", label)
                    else:
                        poller.on_failure = (sqs, url)
                poller.prime()
                workers.append(poller)
            elif schedules and schedule_enabled(properties):
                interval = interval_seconds(schedule_expression(properties))
                if interval is None:
                    log.warning("%s: schedule %r has no local timer", label, schedule_expression(properties))
                    continue
                workers.append(ScheduleTimer(function, source, properties, interval, region, account_id, stop))
    return workers


def schedule_properties(function: LoadedFunction, resolver: Resolver) -> tuple[str | None, dict]:
    """The function's first schedule event (source name, resolved properties), for /_dev/run."""
    for source, event in function.spec.events.items():
        if event.get("Type") in SCHEDULE_TYPES:
            return source, resolver.resolve(event.get("Properties") or {})
    return None, {}
