"""Dev-only routes under /_dev on the gateway. They exist only in the local run, never in the template."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from local import faults
from local.functions import FunctionError, FunctionUnavailable
from local.pollers import SqsPoller, drain, schedule_properties, scheduled_event
from local.servers import RequestHandler, error_body

if TYPE_CHECKING:
    from local.stack import LocalStack


class BadRequest(Exception):
    pass


class DevRoutes:
    def __init__(self, stack: LocalStack):
        self.stack = stack
        self.table: dict[tuple[str, str], Callable[..., tuple[int, Any]]] = {
            ("GET", "health"): self.health,
            ("GET", "outbox"): self.get_outbox,
            ("DELETE", "outbox"): self.delete_outbox,
            ("GET", "clock"): self.get_clock,
            ("POST", "clock"): self.post_clock,
            ("POST", "run"): self.run,
            ("GET", "webhooks"): self.get_webhooks,
            ("POST", "webhooks"): self.post_webhooks,
            ("DELETE", "webhooks"): self.delete_webhooks,
            ("POST", "faults"): self.post_faults,
            ("GET", "faults"): self.get_faults,
            ("DELETE", "faults"): self.delete_faults,
            ("POST", "drain"): self.drain,
        }

    def __call__(self, request: RequestHandler, path: str, query: str, body: bytes) -> int:
        parts = [part for part in path.split("/") if part][1:]
        name, args = (parts[0], parts[1:]) if parts else ("", [])
        handler = self.table.get((request.command, name))
        if len(args) != (1 if name == "run" else 0):
            handler, name = None, ""
        if handler is None:
            known = {method for method, route in self.table if route == name}
            status, payload = (
                (405, error_body("method_not_allowed", f"{request.command} is not allowed here"))
                if known
                else (404, error_body("not_found", "No such dev route"))
            )
        else:
            try:
                status, payload = handler(*args, body=_json(body))
            except BadRequest as error:
                status, payload = 400, error_body("bad_request", str(error))
        request.respond_json(status, payload)
        return status

    # ------------------------------------------------------------------ routes
    def health(self, body: Any) -> tuple[int, Any]:
        return 200, self.stack.health()

    def get_outbox(self, body: Any) -> tuple[int, Any]:
        return 200, self.stack.outbox()

    def delete_outbox(self, body: Any) -> tuple[int, Any]:
        self.stack.clear_outbox()
        return 200, {"cleared": True}

    def get_clock(self, body: Any) -> tuple[int, Any]:
        return 200, _clock_state()

    def post_clock(self, body: Any) -> tuple[int, Any]:
        from rightsdesk.kernel import clock

        body = body or {}
        try:
            if "advance_seconds" in body:
                clock.advance(float(body["advance_seconds"]))
            elif "offset_seconds" in body:
                clock.set_offset(float(body["offset_seconds"]))  # lets a test session start from a known state
            else:
                raise BadRequest('send {"advance_seconds": N} or {"offset_seconds": N}')
        except (TypeError, ValueError) as error:
            raise BadRequest(str(error)) from None
        self.stack.sync_clock()
        return 200, _clock_state()

    def run(self, logical_id: str, body: Any) -> tuple[int, Any]:
        function = self.stack.functions.get(logical_id)
        if function is None:
            return 404, error_body("not_found", f"no function {logical_id} in the template")
        source, properties = schedule_properties(function, self.stack.resolver)
        if isinstance(body, dict) and "event" in body:
            event = body["event"]  # any event, for functions whose trigger has no local source
        else:
            event = scheduled_event(function, source, properties, self.stack.region, self.stack.account_id)
        started = time.monotonic()
        try:
            result = function.invoke(event)
        except FunctionUnavailable as error:
            return 503, error_body("function_unavailable", str(error))
        except FunctionError as error:
            return 500, error_body("function_error", f"{logical_id} raised {error}")
        return 200, {
            "function": logical_id,
            "result": result,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }

    def drain(self, body: Any) -> tuple[int, Any]:
        """Answer once every queue and stream poller has handed on what was visible when asked
        (local.pollers.drain), and every running state machine execution has settled: finished,
        or waiting for a task message that is not visible yet (a retry on the injected clock). A
        test's "and nothing more happened" without sleeping."""
        deadline = time.monotonic() + 60
        while True:
            if not drain(self.stack.workers):
                return 504, error_body("not_drained", "the pollers did not finish two polls within 20 s")
            waiting = self.stack.executions_settled()
            if waiting is not None:
                return 200, {"drained": True, "executions_waiting": waiting}
            if time.monotonic() > deadline:
                return 504, error_body("not_drained", "state machine executions kept running for 60 s")

    def get_webhooks(self, body: Any) -> tuple[int, Any]:
        return 200, self.stack.receiver_app.listing()

    def post_webhooks(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise BadRequest('send {"secret": "whsec_..."} and/or {"respond_status": 410}')
        return 200, self.stack.receiver_app.configure(body)

    def delete_webhooks(self, body: Any) -> tuple[int, Any]:
        self.stack.receiver_app.clear()
        return 200, {"cleared": True}

    def get_faults(self, body: Any) -> tuple[int, Any]:
        return 200, {"aws": faults.listing()}

    def delete_faults(self, body: Any) -> tuple[int, Any]:
        """Clear every AWS fault and release every paused or crash-armed SQS poller."""
        faults.clear()
        for worker in self.stack.workers:
            if isinstance(worker, SqsPoller):
                worker.paused, worker.crash_after = False, None
        return 200, {"cleared": True}

    def post_faults(self, body: Any) -> tuple[int, Any]:
        """{"function": "<LogicalId>", "pause": bool, "crash_after_records": n}: for its SQS pollers;
        {"aws": [rule, ...]}: faults in the handlers' AWS calls (local/faults.py)."""
        if isinstance(body, dict) and "aws" in body:
            try:
                return 200, {"aws": faults.add(list(body["aws"] or []))}
            except (TypeError, ValueError) as error:
                raise BadRequest(str(error)) from None
        if not isinstance(body, dict) or not body.get("function"):
            raise BadRequest(
                'send {"function": "DispatcherFunction", "pause": true} or {..., "crash_after_records": 1}'
            )
        pollers = [
            w for w in self.stack.workers if isinstance(w, SqsPoller) and w.function.spec.logical_id == body["function"]
        ]
        if not pollers:
            return 404, error_body("not_found", f"no SQS poller feeds {body['function']}")
        try:
            for poller in pollers:
                if "pause" in body:
                    poller.paused = bool(body["pause"])
                if "crash_after_records" in body:
                    n = body["crash_after_records"]
                    poller.crash_after = None if n is None else int(n)
        except (TypeError, ValueError) as error:
            raise BadRequest(str(error)) from None
        if body.get("pause"):  # answer once no receive is in flight: nothing slips through after this
            for poller in pollers:
                poller.held.wait(5)
        return 200, [{"poller": p.name, "paused": p.paused, "crash_after_records": p.crash_after} for p in pollers]


def _clock_state() -> dict:
    from rightsdesk.kernel import clock

    return {"now": clock.isoformat(clock.now()), "offset_seconds": clock.offset_seconds()}


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise BadRequest("body must be JSON") from None
