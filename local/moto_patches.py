"""Every change the local run makes to moto's internals, for the one moto version they were read against.

moto's public surface (mock_aws, its server application, the backends' APIs over HTTP) is not enough
for the local run: it needs SQS to follow the injected clock, transactions that cost the same after
10,000 requests as after 10, and the full content of sent mails. Each of those replaces or wraps something private to moto, which any moto release may rename
or change. So they all live here, and importing this module fails at once, with what to do, unless
the installed moto is exactly the version constraints.txt pins (the one this file was checked
against). Reading moto's models (local/outbox.py, tests/support) is not patching and stays there.

Moving to another moto: docs/operations.md, "Dependencies" (read every patch below against it).
"""

from __future__ import annotations

import base64
import calendar
import copy
import functools
import json
import pickle
import time
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from local import caller_first

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"


class MotoVersionMismatch(RuntimeError):
    pass


def pinned_moto_version(constraints: Path = CONSTRAINTS) -> str:
    for line in constraints.read_text(encoding="utf-8").splitlines():
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        if name.strip().lower() == "moto" and version:
            return version.strip()
    raise MotoVersionMismatch(f"{constraints} pins no moto version (a `moto==X.Y.Z` line)")


def check_moto_version(installed: str | None, pinned: str) -> None:
    if installed != pinned:
        raise MotoVersionMismatch(
            f"the local run patches moto {pinned}'s internals (local/moto_patches.py), but "
            f"{'no moto' if installed is None else f'moto {installed}'} is installed. Run `make install`, which "
            f"installs constraints.txt's pins; to move to moto {installed}, first read every patch in "
            "local/moto_patches.py against it (docs/operations.md, Dependencies)."
        )


def _installed_moto_version() -> str | None:
    try:
        return metadata.version("moto")
    except metadata.PackageNotFoundError:
        return None


check_moto_version(_installed_moto_version(), pinned_moto_version())

# Only now: a different moto fails above with what to do, not below with an ImportError.
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    create_backend_app,
)

_MARK = "_rightsdesk_local_patches"  # set on moto's package once every patch is in


def install(remember_mail: Callable[[str | None, dict], None]) -> None:
    """Apply every patch to this process's moto (local/moto_process.py serves it), once per process.
    `remember_mail(message_id, content)` receives each sent simple email's full content."""
    import moto

    if getattr(moto, _MARK, False):
        return
    _capture_sent_mail(remember_mail)
    _sqs_follows_injected_clock()
    _sqs_long_polls_on_the_wall_clock()
    _sqs_visibility_limit_from_the_receive()
    if not getattr(moto, _MARK + "_transactions", False):
        _transactions_check_before_writing()
    _stop_instance_tracking()
    _backend_folders_listed_once()
    stream_records_as_plain_json()
    _action_names_listed_once_per_class()
    _sqs_retention_read_from_the_queue()
    _sqs_send_reads_no_queue_counts()
    dynamodb_items_as_plain_json()
    update_expressions_parsed_and_checked_once()
    condition_expressions_parsed_once_per_request()
    random_ids_drawn_at_once()
    setattr(moto, _MARK, True)


def install_for_unit_tests() -> None:
    """The one patch unit tests want from the in-process moto: transactions without moto's deep copy
    of every touched table (85% of test_registry's time). Unit tests call moto from one thread at a
    time, as the local runner's lock makes it, so the check-then-write patch is safe there."""
    import moto

    if getattr(moto, _MARK, False) or getattr(moto, _MARK + "_transactions", False):
        return
    _transactions_check_before_writing()
    setattr(moto, _MARK + "_transactions", True)


# ---------------------------------------------------------------------------------------- SES
def _capture_sent_mail(remember: Callable[[str | None, dict], None]) -> None:
    """Why: moto keeps a simple message's HTML *or* its text (not both) and drops its headers and
    configuration set, which /_dev/outbox and the mail tests need. Its SES v1 and v2 send_email
    responses are wrapped to hand the full content, by message id, to local/outbox.py."""
    from moto.ses.responses import EmailResponse
    from moto.sesv2.responses import SESV2Response

    v1_send = EmailResponse.send_email
    v2_send = SESV2Response.send_email

    def send_v1(self: Any) -> Any:
        result = v1_send(self)
        message_id = (getattr(result, "result", None) or {}).get("MessageId")
        remember(
            message_id,
            {
                "text": self._get_param("Message.Body.Text.Data"),
                "html": self._get_param("Message.Body.Html.Data"),
                "configuration_set": self._get_param("ConfigurationSetName"),
            },
        )
        return result

    def send_v2(self: Any) -> Any:
        result = v2_send(self)
        params = json.loads(self.body)
        simple = (params.get("Content") or {}).get("Simple")
        if simple:
            body = simple.get("Body") or {}
            remember(
                json.loads(result).get("MessageId"),
                {
                    "text": (body.get("Text") or {}).get("Data"),
                    "html": (body.get("Html") or {}).get("Data"),
                    "headers": [[h.get("Name"), h.get("Value")] for h in simple.get("Headers") or []],
                    "configuration_set": params.get("ConfigurationSetName"),
                },
            )
        return result

    EmailResponse.send_email = send_v1
    SESV2Response.send_email = send_v2


# ---------------------------------------------------------------------------------------- SQS
def _sqs_follows_injected_clock() -> None:
    """Why: webhook retries wait on visibility timeouts, and tests move the injected clock
    (POST /_dev/clock) instead of sleeping, so a message hidden for 5 minutes must show again once
    the clock has moved 5 minutes. moto.sqs.models imported its time functions by name; those
    names are replaced with ones that add rightsdesk.kernel.clock's offset."""
    from moto.sqs import models as sqs

    wall_clock = sqs.unix_time

    def unix_time(dt: Any = None) -> float:
        return wall_clock(dt) + (_clock_offset() if dt is None else 0.0)

    sqs.unix_time = unix_time
    sqs.unix_time_millis = lambda dt=None: unix_time(dt) * 1000.0


def _sqs_long_polls_on_the_wall_clock() -> None:
    """Why: moto ends a long poll when unix_time() passes the poll's end, and unix_time follows the
    injected clock (above). A clock moved back during a poll (a test putting its clock back) left the
    poller waiting until the injected time caught up, days later: no mail or delivery after it. Each
    poll is now moto's own receive without waiting, repeated until the wall-clock wait is over."""
    from moto.sqs import models as sqs

    sqs.SQSBackend.receive_message = receive_on_the_wall_clock(sqs.SQSBackend.receive_message)


def receive_on_the_wall_clock(receive: Callable[..., list]) -> Callable[..., list]:
    def receive_message(
        self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any, **kwargs: Any
    ) -> list:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            found = receive(self, queue_name, count, 0, *args, **kwargs)
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            self.get_queue(queue_name).wait_for_messages(min(left, 1.0))

    return receive_message


def _clock_offset() -> float:
    try:
        from rightsdesk.kernel import clock
    except ImportError:  # a template without the core: real time
        return 0.0
    return clock.offset_seconds()


def _sqs_visibility_limit_from_the_receive() -> None:
    """Why: AWS counts ChangeMessageVisibility's 12-hour limit from the receive, moto from the first
    send, so moto refuses every retry of a message older than 12 hours (the webhook retry schedule
    runs about 78 hours). moto's method, without that limit."""
    from moto.sqs import models as sqs
    from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid

    def change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        if not 0 <= int(visibility_timeout) <= 43200:
            raise InvalidParameterValue(f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid.")
        queue = self.get_queue(queue_name)
        for message in queue._messages:
            if message.had_receipt_handle(receipt_handle):
                message.change_visibility(visibility_timeout)
                if message.visible and message in queue.pending_messages:
                    queue.pending_messages.remove(message)
                return
        raise ReceiptHandleIsInvalid

    sqs.SQSBackend.change_message_visibility = change_message_visibility


def _sqs_send_reads_no_queue_counts() -> None:
    """Why: to see whether a queue deduplicates by content, moto's SendMessage builds the queue's
    whole attribute dictionary, which counts the queue's messages (three passes over them): a send
    cost grew with the queue's length (the mail queue holds hundreds of messages under load, and a
    verification sends two). Only a FIFO queue has that attribute; for any other the dictionary has
    no such key and moto's check is false. moto's method, the check asked of FIFO queues only."""
    import hashlib
    import string

    from moto.moto_api._internal import mock_random as random
    from moto.sqs import models as sqs
    from moto.sqs.exceptions import InvalidParameterValue

    def send_message(
        self: Any,
        queue_name: str,
        message_body: str,
        message_attributes: dict[str, Any] | None = None,
        delay_seconds: int | None = None,
        deduplication_id: str | None = None,
        group_id: str | None = None,
        system_attributes: dict[str, Any] | None = None,
        validate_group_id: bool = True,
    ) -> Any:
        queue = self.get_queue(queue_name)
        self._validate_message(
            queue,
            message_body=message_body,
            delay_seconds=int(delay_seconds or 0),
            deduplication_id=deduplication_id,
            group_id=group_id,
            validate_group_id=validate_group_id,
        )
        delay_seconds = int(delay_seconds) if delay_seconds is not None else queue.delay_seconds
        message = sqs.Message(str(random.uuid4()), message_body, system_attributes)
        if queue.fifo_queue and queue.attributes.get("ContentBasedDeduplication") == "true":  # the one change
            message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
        if deduplication_id is not None:
            message.deduplication_id = deduplication_id
            message.sequence_number = "".join(random.choice(string.digits) for _ in range(20))
        if group_id is not None:
            message.group_id = group_id
        if message_attributes:
            message.message_attributes = message_attributes
        if delay_seconds > sqs.MAXIMUM_MESSAGE_DELAY:
            raise InvalidParameterValue(
                f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
                "Reason: DelaySeconds must be >= 0 and <= 900."
            )
        message.mark_sent(delay_seconds=delay_seconds)
        queue.add_message(message)
        return message

    sqs.SQSBackend.send_message = send_message


# ---------------------------------------------------------------------------------------- DynamoDB
_TRANSACT_OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}


def _transactions_check_before_writing() -> None:
    """Why: before writing, moto's TransactWriteItems backs up every table the transaction touches
    with copy.deepcopy: all items, the indexes and the table's whole stream history. A transaction
    then costs time in proportion to all that was ever written: after a few hundred requests one
    verification took seconds, and the 2,000-request load run (`make load`) would have taken hours.

    DynamoDB requests take turns in the local run (_OneDynamoDBRequestAtATime below), so nothing can
    change between checking and writing: every condition is checked first, like DynamoDB answers a
    transaction, and the writes are made only if all hold. Only the few items touched are copied,
    for the one case in which moto may still fail midway (an update expression it rejects)."""
    from moto.dynamodb import models

    models.DynamoDBBackend.transact_write_items = _transact_write_items


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned, touched, reasons = [], set(), []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        kind, op = next(iter(entry.items()))
        if kind not in _TRANSACT_OPERATIONS:
            reasons.append(("ValidationException", "Unsupported transaction operation", None))
            continue
        table_name = op["TableName"]
        key = _item_key(self.get_table(table_name), op["Item"]) if kind == "Put" else op["Key"]
        unique = (str(table_name), str(dict(sorted(key.items()))))
        if unique in touched:
            raise MultipleTransactionsException()
        touched.add(unique)
        current = self.get_item(table_name, key)
        condition = op.get("ConditionExpression")
        holds = condition is None or get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current)
        if holds:
            reasons.append((None, None, None))
        else:
            old = (
                current.to_json()["Attributes"]
                if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                else None
            )
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
        planned.append((kind, op, table_name, key, copy.deepcopy(current)))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    written: list[tuple[str, dict, Any]] = []
    try:
        for kind, op, table_name, key, before in planned:
            _transact_write(self, kind, op, table_name, key)
            written.append((table_name, key, before))
    except Exception:
        for table_name, key, before in reversed(written):
            if before is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        raise


def _item_key(table: Any, attributes: dict[str, Any]) -> dict[str, Any]:
    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attributes[table.range_key_attr]
    return key


def _transact_write(self: Any, kind: str, op: dict[str, Any], table_name: str, key: dict[str, Any]) -> None:
    # The condition goes along again (it holds): moto checks every expression name is used.
    expressions = {
        "condition_expression": op.get("ConditionExpression"),
        "expression_attribute_names": op.get("ExpressionAttributeNames"),
        "expression_attribute_values": op.get("ExpressionAttributeValues"),
    }
    if kind == "Put":
        self.put_item(table_name, op["Item"], **expressions)
    elif kind == "Delete":
        self.delete_item(table_name, key, **expressions)
    elif kind == "Update":
        self.update_item(table_name, key, update_expression=op["UpdateExpression"], **expressions)


class _OneDynamoDBRequestAtATime:
    """Why: moto's DynamoDB backend is not thread-safe: a write while another thread (a stream
    consumer, a poller's handler) iterates the table fails with "dictionary changed size during
    iteration", and the transaction patch above relies on nothing changing between its check and
    its writes. DynamoDB (and Streams) requests take turns, the calls a caller waits on first
    (local/caller_first.py); the others, SQS long polls included, stay parallel."""

    def __init__(self, app: Any):
        self.app = app
        self.turns = caller_first.Turns()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self.app(environ, start_response)
        self.turns.take(caller_waits=environ.get(caller_first.ENVIRON_KEY) == "1")
        try:
            return self.app(environ, start_response)
        finally:
            self.turns.give_back()


# ---------------------------------------------------------------------------------------- core
def _stop_instance_tracking() -> None:
    """Why: moto lists each model instance it ever made for its dashboard (/moto-api), so every
    copy a DynamoDB write makes would stay alive: memory grew with the square of the writes (about
    5 GB after 100 requests were routed). Nothing here uses the dashboard."""
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import reset_model_data

    def untracked(cls: type, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(untracked)  # type: ignore[method-assign]
    reset_model_data()


def stream_records_as_plain_json() -> None:
    """Why: moto answers GetRecords through its generic serializer, which walks botocore's shape for
    every attribute of every image: with NEW_AND_OLD_IMAGES that was most of moto's time under load
    (the local run reads the whole stream to filter it as Lambda would). moto's records are already
    in DynamoDB's wire format but for datetimes (ApproximateCreationDateTime), which the serializer
    turns into epoch seconds truncated to milliseconds, and binary values, which it base64-encodes;
    json.dumps does the same here.
    tests/unit/test_moto_patches.py reads every attribute type back through botocore."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    if getattr(DynamoDBStreamsHandler.get_records, "_plain_json", False):
        return

    def get_records(self: Any) -> tuple[int, dict[str, str], str]:
        limit = self._get_param("Limit")
        result = self.backend.get_records(self._get_param("ShardIterator"), 1000 if limit is None else limit)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(result, default=_wire_format)

    get_records._plain_json = True  # type: ignore[attr-defined]
    DynamoDBStreamsHandler.get_records = get_records


def _action_names_listed_once_per_class() -> None:
    """Why: to find the method for an action, moto lists every function of the response class with
    inspect.getmembers on every request (5-10% of its time under load). A class's methods do not
    change while it runs."""
    from moto.core import responses

    responses.method_names_from_class = functools.cache(responses.method_names_from_class)


def _sqs_retention_read_from_the_queue() -> None:
    """Why: for each message a receive hands out, moto checks the retention period by building the
    queue's whole attribute dictionary three times, and that dictionary counts the queue's messages:
    a receive cost grew with the square of the queue's length (the mail queue holds a thousand
    messages during `make load`). The period is one attribute of the queue; the check is moto's own,
    on the same injected clock."""
    from moto.sqs import models as sqs

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return retention_period + message.sent_timestamp / 1000 > sqs.unix_time()

    sqs.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


# The DynamoDB operations the handlers use on data, whose answers are plain dictionaries of moto's
# items: the same in DynamoDB's wire format but for datetimes and binary values.
_PLAIN_JSON_ACTIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


def dynamodb_items_as_plain_json() -> None:
    """Why: moto answers every DynamoDB operation through its generic serializer, which walks
    botocore's shape for every attribute of every item: a fifth of moto's time under load. For the
    data operations (_PLAIN_JSON_ACTIONS) the answer is json.dumps of moto's own result, with what
    the serializer leaves out (None) left out and datetimes and binary values converted as it does;
    anything else (errors, table descriptions, an answer json cannot take) goes the serializer's way.
    tests/unit/test_moto_patches.py compares both ways through botocore, operation by operation."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.serialized, "_plain_json", False):
        return
    generic = DynamoHandler.serialized

    def serialized(self: Any, action_result: Any) -> Any:
        result = action_result.result
        if isinstance(result, dict) and self._get_action() in _PLAIN_JSON_ACTIONS:
            try:
                body = json.dumps(_without_none(result), default=_wire_format)
            except TypeError:
                return generic(self, action_result)
            return 200, {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}, body
        return generic(self, action_result)

    serialized._plain_json = True  # type: ignore[attr-defined]
    DynamoHandler.serialized = serialized


def _without_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _without_none(value) for key, value in node.items() if value is not None}
    if isinstance(node, list):
        return [_without_none(value) for value in node]
    return node


def _wire_format(value: Any) -> float | str:
    """A value json cannot take, as moto's serializer writes it for DynamoDB's JSON protocol."""
    if isinstance(value, datetime):
        return calendar.timegm(value.timetuple()) + (value.microsecond // 1000) / 1000.0
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} has no plain JSON form")


def update_expressions_parsed_and_checked_once() -> None:
    """Why: an UpdateItem (alone or in a transaction) was most of moto's DynamoDB time on the
    verification and delivery paths, and the whole of that was checking the update expression, not
    applying it. moto parses each update expression twice per request (the response layer, then the
    backend) and runs ten checks over its syntax tree, each a walk that looks up the node's handler
    through abstract-class isinstance calls; three of them (one clause of each kind, no path twice,
    no key attribute) are checks of the expression and its attribute names alone, and two of those
    count clauses from every clause node: quadratic in the actions (a request's transition has 13).
    The verification's transaction cost about 9 ms of moto's CPU, a delivery's about 12.

    Three changes, none to what is accepted or refused, or to what a write does:
    - one parse per expression text: the parsed tree is kept (bounded) and marked with its text;
      moto never changes it (each check works on its own deep copy, the response layer only reads it);
    - the expression-only checks run once per expression text, attribute names and key attributes:
      the same three inputs always pass or fail them alike, and they come first, so an expression
      that passed once is refused by the same later checks, in the same order, as before;
    - each walk finds a node's handler once per kind of check and kind of node, as the first key of
      the check's map the node is an instance of (moto's own rule), instead of per node.
    tests/unit/test_moto_patches.py holds every refusal and the written items to moto's own way."""
    from moto.dynamodb.parsing import ast_nodes, expressions, validators

    if getattr(expressions.UpdateExpressionParser.make, "_parsed_once", False):
        return
    parse = expressions.UpdateExpressionParser.make.__func__

    @functools.lru_cache(maxsize=1024)
    def parsed(cls: type, expression: str) -> Any:
        tree = parse(cls, expression)
        tree._rightsdesk_source = expression  # copies carry it: the checks below key on it
        try:  # after the mark, so copies made from it carry the mark, not themselves
            tree._rightsdesk_pickled = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            pass  # copied with deepcopy, as moto does
        return tree

    def make(cls: type, expression: str) -> Any:
        return parsed(cls, expression)

    make._parsed_once = True  # type: ignore[attr-defined]
    expressions.UpdateExpressionParser.make = classmethod(make)

    expression_only = (
        validators.ActionCountValidator,
        validators.OverlappingPathsValidator,
        validators.UpdateHashRangeKeyValidator,
    )
    passed: set[tuple] = set()

    def validate(self: Any) -> Any:
        node = self.node_to_validate
        source = getattr(node, "_rightsdesk_source", None)
        key = (
            source,
            tuple(sorted((self.expression_attribute_names or {}).items())),
            tuple(self.table.table_key_attrs),
        )
        known = source is not None and key in passed
        for processor in self.processors:
            if known and isinstance(processor, expression_only):
                continue
            node = processor.traverse(node)
            if source is not None and isinstance(processor, validators.UpdateHashRangeKeyValidator):
                if len(passed) > 4096:
                    passed.clear()
                passed.add(key)  # the expression-only checks (the first three) all passed
        return node

    def __init__(
        self: Any,
        expression: Any,
        expression_attribute_names: dict[str, str],
        expression_attribute_values: dict[str, dict[str, Any]],
        item: Any,
        table: Any,
    ) -> None:
        # moto's Validator.__init__, but for the copy of the tree the checks work on: a kept tree's
        # pickle, loaded (a seventh of deepcopy's time, the same copy: the checks replace nodes).
        self.expression_attribute_names = expression_attribute_names
        self.expression_attribute_values = expression_attribute_values
        self.item = item
        self.table = table
        self.processors = self.get_ast_processors()
        pickled = getattr(expression, "_rightsdesk_pickled", None)
        self.node_to_validate = pickle.loads(pickled) if pickled is not None else copy.deepcopy(expression)  # noqa: S301 - our own bytes

    validators.UpdateExpressionValidator.validate = validate
    validators.UpdateExpressionValidator.__init__ = __init__
    if [type(p) for p in validators.UpdateExpressionValidator.get_ast_processors(_ProcessorsOnly())[:3]] != list(
        expression_only
    ):
        raise MotoVersionMismatch(
            "moto's update expression checks changed order: read update_expressions_parsed_and_checked_once"
        )

    plans: dict[type, dict[type, Any]] = {}
    not_a_node = object()
    default_hook = ast_nodes.DepthFirstTraverser.pre_processing_of_child

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        mapping = self._processing_map()
        plan = plans.setdefault(type(self), {})
        hook = None if type(self).pre_processing_of_child is default_hook else self.pre_processing_of_child

        def visit(node: Any, child_id: int) -> Any:
            kind = type(node)
            try:
                handled_as = plan[kind]
            except KeyError:
                handled_as = plan[kind] = (
                    next((key for key in mapping if issubclass(kind, key)), None)
                    if issubclass(kind, ast_nodes.Node)
                    else not_a_node
                )
            if handled_as is not_a_node:
                return node
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    if hook is not None:
                        hook(node, i)
                    visit(child_node, i)
            if handled_as is not None:
                node = mapping[handled_as](node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
            return node

        return visit(node, child_id)

    ast_nodes.DepthFirstTraverser.traverse_node_recursively = traverse_node_recursively


def condition_expressions_parsed_once_per_request() -> None:
    """Why: moto parses a write's condition expression again at each step that needs it: a
    transaction's every condition three times (the response layer's check of the names used, the
    check before writing above, the backend's write), a single write's twice. Lexing and parsing
    them was a sixth of moto's DynamoDB time. The parse is kept (bounded) by the expression, its
    names and its values, so the same condition with the same values is parsed once; its syntax
    tree is never changed by an evaluation, and a condition that does not parse is refused, as
    before, every time. tests/unit/test_moto_patches.py holds the outcomes to moto's own way."""
    from moto.dynamodb import comparisons

    parser = comparisons.ConditionExpressionParser
    if getattr(parser.parse, "_parsed_once", False):
        return
    parse = parser.parse
    kept: dict[tuple, tuple[Any, list[str], list[str]]] = {}

    def parse_once(self: Any) -> Any:
        if not self.condition_expression:
            return parse(self)
        try:
            key = (
                self.condition_expression,
                json.dumps(self.expression_attribute_names, sort_keys=True),
                json.dumps(self.expression_attribute_values, sort_keys=True),
            )
        except TypeError:  # a value json cannot take (bytes): parsed as moto does
            return parse(self)
        found = kept.get(key)
        if found is None:
            names_before, values_before = len(self.expr_attr_names_found), len(self.expr_attr_values_found)
            op = parse(self)
            if len(kept) > 4096:
                kept.clear()
            kept[key] = (op, self.expr_attr_names_found[names_before:], self.expr_attr_values_found[values_before:])
            return op
        op, names, values = found
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return op

    parse_once._parsed_once = True  # type: ignore[attr-defined]
    parser.parse = parse_once  # type: ignore[method-assign]


def random_ids_drawn_at_once() -> None:
    """Why: moto draws the request id it answers every call with (52 characters) and each SQS
    receipt handle (185) one `random.choice` call per character: about a twentieth of moto's CPU
    under load. The same alphabets and lengths, from moto's own seeded generator, drawn with one
    `choices` call each."""
    import string

    from moto.core import responses
    from moto.moto_api._internal import mock_random
    from moto.sqs import models as sqs

    if getattr(responses.gen_amzn_requestid_long, "_drawn_at_once", False):
        return
    request_id_characters = string.ascii_letters + string.digits

    def gen_amzn_requestid_long(headerdict: dict[str, Any] | None = None) -> str:
        request_id = "".join(mock_random.choices(request_id_characters, k=52))
        if headerdict is not None and isinstance(headerdict, dict):
            headerdict.update({"x-amzn-requestid": request_id})
        return request_id

    def generate_receipt_handle() -> str:
        return "".join(mock_random.choices(string.ascii_lowercase, k=185))

    gen_amzn_requestid_long._drawn_at_once = True  # type: ignore[attr-defined]
    responses.gen_amzn_requestid_long = gen_amzn_requestid_long
    sqs.generate_receipt_handle = generate_receipt_handle


class _ProcessorsOnly:
    """Enough of a validator for get_ast_processors to list its checks (their order is read above)."""

    expression_attribute_names: dict = {}
    expression_attribute_values: dict = {}
    item = None

    class table:  # noqa: N801 - stands for the validator's table attribute
        table_key_attrs: list = []
        attr: list = []
        attribute_keys: list = []


def _backend_folders_listed_once() -> None:
    """Why: moto's server finds the backend for a request's Host header by listing its own package
    folder on disk (os.listdir and an isdir per entry), on every request: under load that was about
    40% of moto's time. The folders do not change while it runs."""
    from moto import backends

    folders = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: folders


def moto_application() -> Any:
    """moto's server application, DynamoDB requests taking turns (local/moto_process.py serves it)."""
    return _OneDynamoDBRequestAtATime(DomainDispatcherApplication(create_backend_app))
