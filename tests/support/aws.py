"""Create the template's tables and queues in moto, so tests run against the real key design.

The shapes are read from template.yaml instead of being repeated here: a test must fail when a
key or index in the template changes and the code does not follow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from local.template import read as read_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
# Only what create_table understands; KMS keys, PITR and the like need resources moto-side tests skip.
_TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "BillingMode")
_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")


@lru_cache(maxsize=1)
def load_template() -> dict[str, Any]:
    return read_template(TEMPLATE)


def resources(resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> Properties of every resource of that type."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in load_template()["Resources"].items()
        if resource["Type"] == resource_type
    }


def resource_name(logical_id: str, prefix: str) -> str:
    """The name the local run gives a resource too: `<prefix>-<LogicalId>`."""
    return f"{prefix}-{logical_id}"


def _client(session_or_client: Any, service: str):
    return session_or_client.client(service) if hasattr(session_or_client, "client") else session_or_client


def create_tables_from_template(session_or_client: Any, prefix: str = "rightsdesk-test") -> dict[str, str]:
    """Create every AWS::DynamoDB::Table of the template; returns logical id -> table name."""
    dynamodb = _client(session_or_client, "dynamodb")
    names = {}
    for logical_id, props in resources("AWS::DynamoDB::Table").items():
        name = resource_name(logical_id, prefix)
        args = {key: props[key] for key in _TABLE_KEYS if key in props}
        stream = props.get("StreamSpecification")
        if stream:
            args["StreamSpecification"] = {"StreamEnabled": True, **stream}
        dynamodb.create_table(TableName=name, **args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        names[logical_id] = name
    return names


def create_queues_from_template(session_or_client: Any, prefix: str = "rightsdesk-test") -> dict[str, str]:
    """Create every AWS::SQS::Queue of the template, dead-letter queues first, with their redrive
    policies; returns logical id -> queue URL."""
    sqs = _client(session_or_client, "sqs")
    queues = resources("AWS::SQS::Queue")

    def dead_letter_target(props: dict[str, Any]) -> str | None:
        target = props.get("RedrivePolicy", {}).get("deadLetterTargetArn")
        return target["Fn::GetAtt"][0] if isinstance(target, dict) else None

    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    ordered = sorted(queues, key=lambda logical_id: dead_letter_target(queues[logical_id]) is not None)
    for logical_id in ordered:
        props = queues[logical_id]
        attributes = {key: str(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
        target = dead_letter_target(props)
        if target:
            policy = {**props["RedrivePolicy"], "deadLetterTargetArn": arns[target]}
            attributes["RedrivePolicy"] = json.dumps(policy)
        url = sqs.create_queue(QueueName=resource_name(logical_id, prefix), Attributes=attributes)["QueueUrl"]
        urls[logical_id] = url
        arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return urls


def fast_pynamodb_sessions(monkeypatch) -> None:
    """Let every pynamodb connection share one botocore data loader.

    pynamodb opens a new botocore session per connection, and each session re-reads the
    DynamoDB service model from disk (~0.1 s); the core opens a connection per transaction.
    """
    import botocore.session
    import pynamodb.connection.base as pynamodb_base

    loader = botocore.session.get_session().get_component("data_loader")

    def session_with_shared_loader() -> botocore.session.Session:
        session = botocore.session.get_session()
        session.register_component("data_loader", loader)
        return session

    monkeypatch.setattr(pynamodb_base, "get_session", session_with_shared_loader)


@dataclass
class MotoCloud:
    session: Any  # boto3.Session on moto
    tables: dict[str, str]
    queues: dict[str, str]
    data_key_id: str | None


def moto_cloud(
    patch,
    prefix: str = "rightsdesk-test",
    *,
    data_key: bool = False,
    env: dict[str, str | None] | None = None,
    no_scans: str | None = None,
    region: str = "eu-central-1",
) -> MotoCloud:
    """Inside `mock_aws()`: credentials that reach nothing real, the template's tables and queues,
    and the core bound to them (settings, hash key, clients). `env` sets (or, with None, unsets)
    more variables before the settings are read; `no_scans` makes any table scan fail with it."""
    import boto3
    from pynamodb.connection import Connection

    from rightsdesk.platform import aws_clients, config, hashing, sealing
    from rightsdesk.store.items.table import bind_table

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        patch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }.items():
        patch.setenv(name, value)
    fast_pynamodb_sessions(patch)
    session = boto3.Session(region_name=region)
    tables = create_tables_from_template(session, prefix=prefix)
    queues = create_queues_from_template(session, prefix=prefix)
    key_id = session.client("kms").create_key(Description="test data key")["KeyMetadata"]["KeyId"] if data_key else None
    variables: dict[str, str | None] = {
        "RIGHTSDESK_TABLE": tables["RightsTable"],
        "MAIL_QUEUE_URL": queues["MailQueue"],
        "DELIVERY_QUEUE_URL": queues["DeliveryQueue"],
        **({"DATA_KEY_ID": key_id} if key_id else {}),
        **(env or {}),
    }
    for name, value in variables.items():
        if value is None:
            patch.delenv(name, raising=False)
        else:
            patch.setenv(name, value)
    config.reload()
    hashing.forget_key()
    aws_clients.forget_clients()
    sealing.forget_clients()
    bind_table(tables["RightsTable"])
    if no_scans:

        def refuse_scan(*args, **kwargs):
            raise AssertionError(no_scans)

        patch.setattr(Connection, "scan", refuse_scan)
    return MotoCloud(session, tables, queues, key_id)


def made(body: dict):
    """The mail a queued message stands for, made as the notifier makes it when it sends
    (rightsdesk.outbound.mail_kinds): None if there is nothing to send any more."""
    from rightsdesk.outbound import notify

    return notify.MailMessage.from_body(body).resolve()


def code_in(bodies: list[dict], request_id: str) -> str:
    """The code of that request's verification mail among queued mail messages, as the notifier makes it."""
    for body in bodies:
        if body.get("kind") == "verification_code" and body["ids"]["request_id"] == request_id:
            return made(body).context["code"]
    raise AssertionError("no verification mail for that request")


def drain_queue(session, queue_url: str) -> list[dict]:
    """Every message waiting on the queue, received and deleted: their bodies, in order."""
    sqs, bodies = session.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            bodies.append(json.loads(message["Body"]))
    return bodies


def verification_code(session, queue_url: str, request_id: str) -> str:
    """Drains the mail queue up to that request's verification mail and returns its code."""
    sqs = session.client("sqs")
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            if body.get("kind") == "verification_code" and body["ids"]["request_id"] == request_id:
                return code_in([body], request_id)
    raise AssertionError("no verification mail for that request")
