"""A fresh rights table in moto (in-process) with helpers to create requests in every retention
state through the core's own calls, and to read the table's stream as Lambda would deliver it.

The dispatcher's delivered transition and the internal close are simulated with the same
`lifecycle.transition` + `retention.schedule_actions` calls their modules make (DESIGN.md), so these tests exercise the rules without the handlers.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws
from pynamodb.connection import Connection

from rightsdesk.intake import submissions
from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.retention import Rule
from rightsdesk.kernel.status import Status
from rightsdesk.platform import aws_clients, config, hashing
from rightsdesk.routing import registry
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import bind_table
from rightsdesk.store.lifecycle import transition
from tests.support.aws import (
    create_queues_from_template,
    create_tables_from_template,
    fast_pynamodb_sessions,
    verification_code,
)

REGION = "eu-central-1"
EMAIL, NAME, DETAILS = "ada@example.org", "Ada Lovelace", "please erase my chats"
_deserialize = TypeDeserializer().deserialize


def aws_environment(patch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "RIGHTSDESK_STACK"):
        patch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_METRICS_NAMESPACE": "rightsdesk",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        patch.setenv(name, value)


class World:
    def __init__(self, patch, prefix: str = "rightsdesk-test"):
        self.session = boto3.Session(region_name=REGION)
        tables = create_tables_from_template(self.session, prefix)
        self.queues = create_queues_from_template(self.session, prefix)
        self.table = tables["RightsTable"]
        patch.setenv("RIGHTSDESK_TABLE", self.table)
        patch.setenv("MAIL_QUEUE_URL", self.queues["MailQueue"])
        patch.setenv("DELIVERY_QUEUE_URL", self.queues["DeliveryQueue"])
        config.reload()
        hashing.forget_key()
        aws_clients.forget_clients()
        bind_table(self.table)
        self.dynamodb = self.session.client("dynamodb")
        self.stream_arn = self.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        self._seen = 0
        self.skip_stream()

    # ------------------------------------------------------------------ requests in every state
    def controller(self, *, delivery: str = "email", purge_after_seconds: int | None = None) -> str:
        controller_id = hashing.new_id("ctl")
        site = controller_id.replace("_", "-")
        registry.register(
            name="Shop",
            site_key=site,
            contact_email="dpo@shop.test",
            delivery=delivery,
            controller_id=controller_id,
            purge_after_seconds=purge_after_seconds,
        )
        return site

    def submit(self, site: str | None = None, **fields: Any) -> str:
        submission = Submission(
            site=site or self.controller(), type="access", email=EMAIL, name=NAME, details=DETAILS, **fields
        )
        return submissions.submit(submission, locale="en").request_id

    def code_for(self, request_id: str) -> str:
        return verification_code(self.session, self.queues["MailQueue"], request_id)

    def verified(self, site: str | None = None) -> tuple[str, str]:
        """A verified request: (request id, status token)."""
        request_id = self.submit(site)
        verified = submissions.verify(request_id, self.code_for(request_id))
        return request_id, verified.status_token

    def deliver(self, request_id: str, *, override: timedelta | None = None) -> datetime:
        """What the dispatcher does on delivery: forwarded -> delivered, scheduling the purge."""
        request = RequestItem.get(RequestItem.key(request_id), RequestItem.SK, consistent_read=True)
        transition(request, Status.FORWARDED, actor="dispatcher", cause="route_email")
        at = clock.now()
        transition(
            request,
            Status.DELIVERED,
            actor="dispatcher",
            cause="delivered_email",
            at=at,
            updates=[
                RequestItem.delivered_at.set(at),
                *retention.schedule_actions(request, Rule.DELIVERED_SUBJECT_DATA, at, override),
            ],
        )
        return at

    def close_internal(self, request_id: str) -> datetime:
        """What the operator's own handling does on closing: schedule the 30-day purge."""
        request = RequestItem.get(RequestItem.key(request_id), RequestItem.SK, consistent_read=True)
        transition(request, Status.IN_PROGRESS, actor="operator")
        closed = clock.now()
        transition(
            request,
            Status.COMPLETED,
            actor="operator",
            at=closed,
            updates=retention.schedule_actions(request, Rule.CLOSED_INTERNAL_REQUEST, closed),
        )
        return closed

    # ------------------------------------------------------------------ reading back
    def item(self, request_id: str, sk: str = "REQUEST") -> dict | None:
        found = self.dynamodb.get_item(
            TableName=self.table, ConsistentRead=True, Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": sk}}
        ).get("Item")
        return {name: _deserialize(value) for name, value in found.items()} if found else None

    def audit(self, request_id: str) -> list[dict]:
        page = self.dynamodb.query(
            TableName=self.table,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :audit)",
            ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}, ":audit": {"S": "AUDIT#"}},
        )
        return [{name: _deserialize(value) for name, value in item.items()} for item in page["Items"]]

    # ------------------------------------------------------------------ the stream
    def skip_stream(self) -> None:
        """Forget what the stream holds so far (set-up writes)."""
        self._seen = len(self._shard().items)

    def _shard(self):
        # moto's in-process DynamoDB Streams API answers "not yet implemented"; its table keeps the
        # records it would serve (the local run reads them over HTTP, where the API works).
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(self.table).stream_shard

    def stream_records(self) -> list[dict]:
        """New stream records, shaped as Lambda delivers them (JSON-safe, with an eventSourceARN)."""
        items = self._shard().items
        records = []
        for raw in items[self._seen :]:
            record = _json_safe(raw.to_json())
            record.update(eventSourceARN=self.stream_arn, awsRegion=REGION)
            records.append(record)
        self._seen = len(items)
        return records


def as_ttl_deletion(record: dict) -> dict:
    """moto cannot expire items: a TTL deletion is a REMOVE that DynamoDB's service principal made."""
    return {**record, "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"}}


@contextmanager
def world_in_moto(*, no_scans: str | None = None) -> Iterator[World]:
    """A World on moto in this process, the injectable clock at zero offset; with `no_scans`, any
    table scan fails with that message."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        fast_pynamodb_sessions(patch)
        if no_scans:

            def refuse_scan(*args, **kwargs):
                raise AssertionError(no_scans)

            patch.setattr(Connection, "scan", refuse_scan)
        clock.set_offset(0)
        yield World(patch)
    clock.set_offset(0)


def _json_safe(node: Any) -> Any:
    """moto's in-process stream record holds bytes and datetimes; Lambda delivers base64 strings and
    epoch seconds (the local run reads GetRecords' JSON, which already has them: local/stream_records.py)."""
    if isinstance(node, dict):
        return {key: _json_safe(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_json_safe(value) for value in node]
    if isinstance(node, (bytes, bytearray)):
        return base64.b64encode(node).decode()
    if isinstance(node, datetime):
        return node.timestamp()
    return node
