"""A subject's and an operator's moves against a running local stack, for the issue-7 tests
(fault injection, personal-data search): submit, verify, look at the table, the queues, the
webhooks and the faults. Everything goes over HTTP or to the stack's moto, never in-process.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from rightsdesk.kernel.status import Status, can_transition

TABLE = "rightsdesk-local-RightsTable"
JSON = {"Accept": "application/json"}


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll until predicate() is truthy (and return it), or fail at the deadline naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)


def eventually(check: Callable[[], Any], timeout: float = 15, interval: float = 0.1) -> Any:
    """wait_for without a description, for checks that speak for themselves."""
    return wait_for(check, f"a condition ({timeout} s)", timeout, interval)


class Flow:
    """`site`: the site requests are submitted for; a test on a shared stack passes its own
    (tests/support/stack.py register_controller), one on a stack of its own may keep the demo's."""

    def __init__(self, stack: Any, site: str = "demo"):
        self.stack = stack
        self.site = site
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-central-1"
        )
        self.sqs = session.client("sqs", endpoint_url=stack.moto_url)
        self.dynamodb = session.client("dynamodb", endpoint_url=stack.moto_url)
        self.table = session.resource("dynamodb", endpoint_url=stack.moto_url).Table(TABLE)

    # ------------------------------------------------------------------ the subject
    @staticmethod
    def new_email(tag: str = "subject") -> str:
        return f"{tag}-{uuid.uuid4().hex[:10]}@example.org"

    def submit(self, email: str, headers: dict[str, str] | None = None, **fields: Any) -> Any:
        body = {"site": self.site, "type": "access", "email": email, **fields}
        return self.stack.post("/v1/requests", json=body, headers={**JSON, **(headers or {})})

    def code(self, email: str, timeout: float = 30) -> str:
        return re.search(r"\b(\d{6})\b", self.stack.wait_for_mail(email, timeout=timeout)["text"]).group(1)

    def verify(self, request_id: str, code: str) -> Any:
        return self.stack.post(f"/v1/requests/{request_id}/verify", json={"code": code}, headers=JSON)

    def submit_and_verify(self, email: str | None = None, **fields: Any) -> dict:
        email = email or self.new_email()
        submitted = self.submit(email, **fields)
        assert submitted.status_code == 202, submitted.text
        request_id = submitted.json()["request_id"]
        verified = self.verify(request_id, self.code(email))
        assert verified.status_code == 200, verified.text
        return {"request_id": request_id, "email": email, **verified.json()}

    # ------------------------------------------------------------------ what was stored and sent
    def item(self, request_id: str, sk: str = "REQUEST") -> dict | None:
        return self.table.get_item(Key={"pk": f"REQ#{request_id}", "sk": sk}, ConsistentRead=True).get("Item")

    def status(self, request_id: str) -> str | None:
        return (self.item(request_id) or {}).get("status")

    def audit(self, pk: str) -> list[dict]:
        found = self.table.query(KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with("AUDIT#"))["Items"]
        return sorted(found, key=lambda e: e["sk"])

    def transitions(self, request_id: str) -> list[tuple[str | None, str]]:
        return [(e.get("from_status"), e["to_status"]) for e in self.audit(f"REQ#{request_id}") if e.get("to_status")]

    def scan(self, table: str = TABLE) -> list[dict]:
        return [
            item for page in self.dynamodb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]
        ]

    def deliveries(self, request_id: str, event_type: str = "dsr.request.forwarded") -> list[dict]:
        return [
            d
            for d in self.stack.webhooks()
            if isinstance(d["body"], dict)
            and d["body"].get("type") == event_type
            and d["body"]["data"].get("request_id") == request_id
        ]

    def mails_to(self, address: str) -> list[dict]:
        return [mail for mail in self.stack.outbox() if address in mail["to"]]

    def queue_url(self, logical_id: str) -> str:
        return self.sqs.get_queue_url(QueueName=f"rightsdesk-local-{logical_id}")["QueueUrl"]

    def peek(self, logical_id: str) -> list[dict]:
        """Bodies of the messages now visible on a queue, left there."""
        seen: dict[str, dict] = {}
        for _ in range(5):
            for message in self.sqs.receive_message(
                QueueUrl=self.queue_url(logical_id), MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", []):
                seen[message["MessageId"]] = json.loads(message["Body"])
        return list(seen.values())

    # ------------------------------------------------------------------ faults (local/faults.py)
    def inject(self, *rules: dict) -> None:
        self.stack._ok(self.stack.post("/_dev/faults", json={"aws": list(rules)}))

    def faults(self) -> list[dict]:
        return self.stack._ok(self.stack.get("/_dev/faults"))["aws"]

    def clear_faults(self) -> None:
        self.stack._ok(self.stack.http.delete(f"{self.stack.base_url}/_dev/faults", timeout=10))

    def logged(self, message: str, *fragments: str) -> int:
        """How many log lines carry this message and every fragment (an id, '"attempt":2,')."""
        return sum(
            1
            for line in self.stack.logs().splitlines()
            if f'"message":"{message}"' in line and all(fragment in line for fragment in fragments)
        )

    # ------------------------------------------------------------------ invariants
    def assert_whole(self, request_id: str) -> str:
        """No half-written request: its status, its audit trail, its code and its fields agree."""
        request = self.item(request_id)
        assert request is not None, f"{request_id} is missing"
        status = request["status"]
        steps = self.transitions(request_id)
        assert steps and steps[0] == (None, Status.IDENTITY_UNVERIFIED.value)
        for (_, previous), (before, after) in zip(steps, steps[1:]):
            assert before == previous and can_transition(before, after), (request_id, steps)
        assert steps[-1][1] == status, "the audit trail ends where the request is"
        assert request["gsi1sk"].startswith(f"{status}#"), "the controller's listing shows the same status"
        challenge = self.item(request_id, "CHALLENGE")
        if status == Status.IDENTITY_UNVERIFIED.value:
            assert "status_token_hash" not in request
        else:
            assert challenge is None, "a verified request keeps no code"
            assert request.get("status_token_hash") and request.get("due_at") and request.get("verified_at")
        if status == Status.DELIVERED.value:
            assert request.get("delivered_at")
            assert request.get("retention_rule") == "delivered_subject_data" or request.get("personal_purged_at")
        return status
