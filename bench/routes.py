"""Warm latency of every API route of the template, in-process against moto server.

Each route's handler is invoked directly with an API Gateway event, as Lambda calls a warm
container (the controller routes with the authorizer's context and the demo controller's key; the
authorizer itself has a row of its own). Requests, codes and tokens are made beforehand through
the public API, so each call does its real work once: a code is spent once, a request cancelled
once. A route added later without a recipe here is still timed, with placeholder path values: the
table shows the status it answered.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from bench.api_latency import _codes_from_mail_queue, _codes_from_outbox, _percentile
from bench.events import api_event

WARM_UP = 3


class Fixtures:
    """Requests in each state the routes need, `count` of each."""

    def __init__(self, stack: Any, count: int):
        self.stack, self.count = stack, count
        self.unverified = [self._submit(f"route-u{n}") for n in range(count + WARM_UP)]
        self.codes = self._codes(self.unverified)
        verified = [self._submit(f"route-v{n}") for n in range(2 * (count + WARM_UP))]
        codes = self._codes(verified)
        self.tokens = {rid: self._verify(rid, codes[rid]) for rid in verified}
        self.verified = iter(verified)
        self.policy = self._publish()

    @staticmethod
    def _publish() -> tuple[str, str] | None:
        try:
            from rightsdesk.notices import policies

            policies.publish(
                policies.Publication(
                    doc="privacy",
                    version="2026-01",
                    url="https://example.com/privacy",
                    summaries={"en": "What changed, in two lines."},
                    text="The privacy policy, in full.",
                )
            )
        except Exception:  # noqa: BLE001 - a bench without notices still times the 404
            return None
        return "privacy", "2026-01"

    def _submit(self, tag: str) -> str:
        answer = self.stack.invoke(
            "PublicApiFunction",
            api_event(
                "POST",
                "/v1/requests",
                "/v1/requests",
                body={"site": "demo", "type": "access", "email": f"{tag}@example.org"},
            ),
        )
        return json.loads(answer["body"])["request_id"]

    def _codes(self, request_ids: list[str]) -> dict[str, str]:
        import boto3

        codes = _codes_from_mail_queue(boto3.client("sqs"), os.environ["MAIL_QUEUE_URL"], len(request_ids))
        codes.update(_codes_from_outbox(self.stack, set(request_ids) - codes.keys()))
        return codes

    def _verify(self, request_id: str, code: str) -> str:
        answer = self.stack.invoke(
            "PublicApiFunction",
            api_event(
                "POST",
                "/v1/requests/{id}/verify",
                f"/v1/requests/{request_id}/verify",
                body={"code": code},
                path_parameters={"id": request_id},
            ),
        )
        return json.loads(answer["body"])["status_token"]

    def fresh_verified(self) -> tuple[str, str]:
        request_id = next(self.verified)
        return request_id, self.tokens[request_id]


def _recipes(fx: Fixtures, api_key: str) -> dict[tuple[str, str], Callable[[int], dict]]:
    """(method, resource) -> the n-th call's event."""
    public_id, public_token = next(iter(fx.tokens.items()))
    controller = {"Authorization": f"Bearer {api_key}"}

    def bearer(token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}

    def cancel(n: int) -> dict:
        request_id, token = fx.fresh_verified()
        return api_event(
            "POST",
            "/v1/requests/{id}/cancel",
            f"/v1/requests/{request_id}/cancel",
            path_parameters={"id": request_id},
            headers=bearer(token),
        )

    def report(n: int) -> dict:
        request_id, _ = fx.fresh_verified()
        return api_event(
            "POST",
            "/v1/controller/requests/{id}/status",
            f"/v1/controller/requests/{request_id}/status",
            path_parameters={"id": request_id},
            headers=controller,
            body={"status": "acknowledged"},
        )

    doc, version = fx.policy or ("privacy", "1")
    return {
        ("GET", "/v1/policies/{doc}"): lambda n: api_event(
            "GET", "/v1/policies/{doc}", f"/v1/policies/{doc}", path_parameters={"doc": doc}
        ),
        ("GET", "/v1/policies/{doc}/versions/{version}"): lambda n: api_event(
            "GET",
            "/v1/policies/{doc}/versions/{version}",
            f"/v1/policies/{doc}/versions/{version}",
            path_parameters={"doc": doc, "version": version},
        ),
        ("GET", "/"): lambda n: api_event("GET", "/", "/", headers={"Accept": "text/html"}),
        ("GET", "/openapi.json"): lambda n: api_event("GET", "/openapi.json", "/openapi.json"),
        ("POST", "/v1/requests"): lambda n: api_event(
            "POST",
            "/v1/requests",
            "/v1/requests",
            body={"site": "demo", "type": "access", "email": f"route-s{n}@example.org"},
        ),
        ("GET", "/verify/{id}"): lambda n: api_event(
            "GET",
            "/verify/{id}",
            f"/verify/{public_id}",
            path_parameters={"id": public_id},
            headers={"Accept": "text/html"},
        ),
        ("POST", "/v1/requests/{id}/verify"): lambda n: api_event(
            "POST",
            "/v1/requests/{id}/verify",
            f"/v1/requests/{fx.unverified[n]}/verify",
            body={"code": fx.codes[fx.unverified[n]]},
            path_parameters={"id": fx.unverified[n]},
        ),
        ("GET", "/v1/requests/{id}"): lambda n: api_event(
            "GET",
            "/v1/requests/{id}",
            f"/v1/requests/{public_id}",
            path_parameters={"id": public_id},
            headers=bearer(public_token),
        ),
        ("GET", "/status/{id}"): lambda n: {
            **api_event(
                "GET",
                "/status/{id}",
                f"/status/{public_id}",
                path_parameters={"id": public_id},
                headers={"Accept": "text/html"},
            ),
            "queryStringParameters": {"token": public_token},
        },
        ("POST", "/v1/requests/{id}/cancel"): cancel,
        ("GET", "/v1/controller/requests"): lambda n: api_event(
            "GET", "/v1/controller/requests", "/v1/controller/requests", headers=controller
        ),
        ("GET", "/v1/controller/requests/{id}"): lambda n: api_event(
            "GET",
            "/v1/controller/requests/{id}",
            f"/v1/controller/requests/{public_id}",
            path_parameters={"id": public_id},
            headers=controller,
        ),
        ("POST", "/v1/controller/requests/{id}/status"): report,
        ("POST", "/v1/controller/webhook/rotate"): lambda n: api_event(
            "POST", "/v1/controller/webhook/rotate", "/v1/controller/webhook/rotate", headers=controller
        ),
        ("POST", "/v1/controller/webhook/test"): lambda n: api_event(
            "POST", "/v1/controller/webhook/test", "/v1/controller/webhook/test", headers=controller
        ),
    }


def _placeholder(method: str, resource: str) -> Callable[[int], dict]:
    path = resource.replace("{id}", "dsr_bench").replace("{doc}", "privacy").replace("{version}", "1")
    params = {part.strip("{}"): "x" for part in resource.split("/") if part.startswith("{")} or None

    def event(n: int) -> dict:
        made = api_event(method, resource, path, path_parameters=params)
        # A caller of its own per call: the failed-attempt guard (rightsdesk.intake.guard) would refuse one
        # address after 20 refusals and time its 429 instead.
        made["requestContext"]["identity"]["sourceIp"] = f"198.51.100.{n % 250}"
        return made

    return event


def _authorizer_event(api_key: str) -> dict:
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:eu-central-1:123456789012:api/local/GET/v1/controller/requests",
        "resource": "/v1/controller/requests",
        "path": "/v1/controller/requests",
        "httpMethod": "GET",
        "headers": {"Authorization": f"Bearer {api_key}"},
        "requestContext": {"stage": "local"},
    }


def measure(stack: Any, count: int = 30) -> list[dict]:
    api_key = stack.demo_api_key
    fixtures = Fixtures(stack, count)
    recipes = _recipes(fixtures, api_key)
    rows = []
    for route in stack.routes:
        if route.method == "OPTIONS":
            continue  # CORS preflights: powertools answers them alone, and only once CorsAllowOrigins is set
        key = (route.method, route.resource)
        make = recipes.get(key) or _placeholder(*key)
        function = route.function.spec.logical_id
        samples, statuses = [], set()
        for n in range(count + WARM_UP):
            event = make(n)
            if route.authorizer is not None:
                event["requestContext"]["authorizer"] = {"controller_id": "ctl_demo", "principalId": "ctl_demo"}
            started = time.perf_counter()
            answer = stack.invoke(function, event)
            elapsed = (time.perf_counter() - started) * 1000
            statuses.add(answer.get("statusCode"))
            if n >= WARM_UP:
                samples.append(elapsed)
        rows.append(_row(f"{route.method} {route.resource}", function, samples, statuses, key in recipes))
    samples = []
    for n in range(count + WARM_UP):
        started = time.perf_counter()
        stack.invoke("ControllerAuthorizerFunction", _authorizer_event(api_key))
        if n >= WARM_UP:
            samples.append((time.perf_counter() - started) * 1000)
    rows.append(_row("(authorizer) Bearer <api key>", "ControllerAuthorizerFunction", samples, {"allow"}, True))
    return rows


def _row(route: str, function: str, samples: list[float], statuses: set, recipe: bool) -> dict:
    return {
        "route": route,
        "function": function,
        "n": len(samples),
        "status": ",".join(sorted(map(str, statuses))),
        "p50_ms": _percentile(samples, 0.5),
        "p99_ms": _percentile(samples, 0.99),
        "placeholder": not recipe,
    }
