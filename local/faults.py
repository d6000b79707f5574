"""AWS faults injected into the handlers' own AWS calls (POST /_dev/faults {"aws": [...]}).

Faults sit where botocore sends a request, in the handler's own process, so every client is covered (boto3's,
pynamodb's, powertools') and botocore's own retry logic sees them as it would see AWS: a throttle
injected twice is absorbed by the SDK's retries, one injected twenty times reaches the handler.
A fault can also *crash* the invocation at that call: the handler stops as a Lambda environment
killed mid-flight would (nothing after that line runs, no error handler of the function sees it).

A rule:
  service     botocore service name: dynamodb, sqs, ses, sesv2, secretsmanager, kms
  operation   API operation: TransactWriteItems, SendMessage, SendRawEmail, ...
  error       AWS error code to answer with (ProvisionedThroughputExceededException, MessageRejected,
              TransactionCanceledException, ...), or
  crash       true: raise InjectedCrash instead of sending; "after": send, then raise it once AWS
              has answered (the call's write stands, the environment dies before the next line)
  reasons     for TransactionCanceledException: CancellationReasons codes, e.g. [null, "TransactionConflict"]
  function    only calls made while this function (logical ID) runs; the runner's own polling is
              never matched unless a rule names no function
  skip        let this many matching calls through first (default 0)
  times       how many matching calls fail (default 1; -1 until cleared)
Only the handlers' calls are affected: tests reading moto from their own process see no faults.

The rules and their counters live in the runner. A handler runs in a container process
(local/zygote.py), where install_remote() puts the same botocore hook in front of a question to the
runner; the runner says with each invocation whether any rule exists, so without rules a call costs
nothing extra. In one process (the unit tests' in-process moto) the rules are read directly.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

_lock = threading.Lock()
_rules: list[Rule] = []
# The logical ID whose invocation makes a call: a context variable, so a call an invocation makes on
# another thread in a copy of its context (rightsdesk.platform.overlap) is still that function's.
_function: ContextVar[str | None] = ContextVar("local_fault_function", default=None)
_installed = False
# In a container: asks the runner whether a call fails (None in the runner and the unit tests).
_remote: Callable[[str, str], dict | None] | None = None
_remote_active = False  # the runner had rules when this invocation started

# Status codes AWS uses for these errors; anything else is a client error (400).
_STATUS = {"InternalServerError": 500, "InternalFailure": 500, "ServiceUnavailable": 503, "InternalError": 500}


class InjectedCrash(BaseException):
    """The Lambda environment died at this call. A BaseException, so no `except Exception` in the
    handler (or powertools) can turn the crash into an orderly failure."""


@dataclass
class Rule:
    service: str
    operation: str
    error: str | None = None
    crash: bool = False
    crash_after: bool = False  # the call is made; the environment dies when its answer is back
    reasons: list[str | None] | None = None
    function: str | None = None
    skip: int = 0
    times: int = 1
    seen: int = 0
    hits: int = 0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @classmethod
    def parse(cls, spec: Any) -> Rule:
        if not isinstance(spec, dict) or not spec.get("service") or not spec.get("operation"):
            raise ValueError('a fault names a "service" and an "operation"')
        if bool(spec.get("error")) == bool(spec.get("crash")):
            raise ValueError('a fault has either an "error" code or "crash": true')
        if spec.get("crash") not in (None, False, True, "after"):
            raise ValueError('"crash" is true or "after"')
        return cls(
            service=str(spec["service"]),
            operation=str(spec["operation"]),
            error=str(spec["error"]) if spec.get("error") else None,
            crash=bool(spec.get("crash")),
            crash_after=spec.get("crash") == "after",
            reasons=list(spec["reasons"]) if spec.get("reasons") else None,
            function=str(spec["function"]) if spec.get("function") else None,
            skip=int(spec.get("skip", 0)),
            times=int(spec.get("times", 1)),
        )

    @property
    def spent(self) -> bool:
        return self.times >= 0 and self.hits >= self.times

    def view(self) -> dict:
        return {
            "id": self.id,
            "service": self.service,
            "operation": self.operation,
            "error": self.error,
            "crash": "after" if self.crash_after else self.crash,
            "function": self.function,
            "skip": self.skip,
            "times": self.times,
            "hits": self.hits,
            "reasons": self.reasons,
        }

    @classmethod
    def from_view(cls, view: dict) -> Rule:
        """The runner's answer to a container: enough of the rule to answer the call with."""
        return cls(
            service=view["service"],
            operation=view["operation"],
            error=view.get("error"),
            crash=bool(view.get("crash")),
            crash_after=view.get("crash") == "after",
            reasons=view.get("reasons"),
            id=view["id"],
        )


def add(specs: list[Any]) -> list[dict]:
    rules = [Rule.parse(spec) for spec in specs]
    install()
    with _lock:
        _rules.extend(rules)
    return [rule.view() for rule in rules]


def clear() -> None:
    with _lock:
        _rules.clear()


def listing() -> list[dict]:
    with _lock:
        return [rule.view() for rule in _rules]


def active() -> bool:
    """Whether any rule exists: sent with each invocation, so a container without rules never asks."""
    return bool(_rules)


@contextmanager
def running(logical_id: str) -> Iterator[None]:
    """Calls made inside are made by this function (LoadedFunction.invoke wraps every invocation)."""
    token = _function.set(logical_id)
    try:
        yield
    finally:
        _function.reset(token)


def current_function() -> str | None:
    """The function whose invocation makes the current call (None: the runner's own call)."""
    return _function.get()


def install_remote(ask: Callable[[str, str], dict | None]) -> None:
    """In a container: every call a handler makes is checked against the runner's rules (take())."""
    global _remote
    _remote = ask
    install()


def remote_rules(active: bool) -> None:
    global _remote_active
    _remote_active = active


def _take(service: str, operation: str) -> Rule | None:
    function = _function.get()
    if _remote is not None:
        if not _remote_active or function is None:
            return None
        view = _remote(service, operation)
        return Rule.from_view(view) if view else None
    return take(function, service, operation)


def take(function: str | None, service: str, operation: str) -> Rule | None:
    """The rule that fails this call of `function` (None: the runner's own call), counting it."""
    with _lock:
        for rule in _rules:
            if rule.spent or (rule.service, rule.operation) != (service, operation):
                continue
            if function is None or rule.function not in (None, function):
                continue
            rule.seen += 1
            if rule.seen <= rule.skip:
                return None
            rule.hits += 1
            return rule
    return None


# ------------------------------------------------------------------ botocore


def install() -> None:
    """Wrap botocore's Endpoint once: a matching call is answered here instead of by AWS (moto).

    The answer goes through botocore's own response parsing, and retries happen above this call,
    so the SDK treats it as it would treat the same answer from AWS. Answering before the request's
    `before-send` event also works under moto's in-process mock_aws, which answers there.
    """
    global _installed
    if _installed:
        return
    from botocore.endpoint import Endpoint, convert_to_response_dict

    do_get_response = Endpoint._do_get_response

    def _do_get_response(self, request, operation_model, context):
        rule = _take(operation_model.service_model.service_name, operation_model.name)
        if rule is None:
            return do_get_response(self, request, operation_model, context)
        if rule.crash_after:
            do_get_response(self, request, operation_model, context)
        if rule.crash:
            raise InjectedCrash(f"{operation_model.service_model.service_name}.{operation_model.name}")
        http_response = error_response(request.url, rule, operation_model)
        response_dict = convert_to_response_dict(http_response, operation_model)
        parser = self._response_parser_factory.create_parser(operation_model.service_model.resolved_protocol)
        parsed = parser.parse(response_dict, operation_model.output_shape)
        self._add_modeled_error_fields(response_dict, parsed, operation_model, parser)
        return (http_response, parsed), None

    Endpoint._do_get_response = _do_get_response
    _installed = True


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def error_response(url: str, rule: Rule, operation_model: Any) -> Any:
    """The HTTP answer AWS gives for `rule.error`, in the service's protocol, for botocore to parse."""
    from botocore.awsrequest import AWSResponse

    code, message = str(rule.error), f"injected by the local run's fault {rule.id}"
    status = _STATUS.get(code, 400)
    protocol = operation_model.service_model.resolved_protocol
    request_id = str(uuid.uuid4())
    if protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    elif protocol in ("rest-json", "rest-xml"):
        body = json.dumps({"message": message}).encode()
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": request_id}
    else:  # json: DynamoDB, SQS
        prefix = operation_model.service_model.metadata.get("targetPrefix", "")
        error: dict[str, Any] = {"__type": f"com.amazonaws.{prefix.lower()}#{code}", "message": message}
        if rule.reasons:
            error["CancellationReasons"] = [
                {"Code": reason or "None", **({"Message": message} if reason else {})} for reason in rule.reasons
            ]
        body = json.dumps(error).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-RequestId": request_id,
            "x-amzn-query-error": f"{code};Sender",
        }
    return AWSResponse(url, status, headers, _Raw(body))
