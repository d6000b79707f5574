"""Breach and policy notices against moto in-process: the template's tables and queues, an SES
sender, controllers and subjects, and a stand-in for Lambda's SQS poller that drives the real
NotifierFunction handler, with faults when a test asks for them.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3

from rightsdesk.kernel import clock
from rightsdesk.kernel.status import Status
from rightsdesk.outbound import notify
from rightsdesk.platform import aws_clients, config, hashing
from rightsdesk.routing import registry
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import bind_table
from rightsdesk.store.lifecycle import listing_key
from tests.support.aws import create_queues_from_template, create_tables_from_template

REGION = "eu-central-1"
ACCOUNT = "123456789012"
SENDER = "privacy@example.com"
ROOT = Path(__file__).resolve().parents[2]


def aws_environment(patch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "RIGHTSDESK_STACK", "SES_MAX_SEND_RATE"):
        patch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_METRICS_NAMESPACE": "rightsdesk",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "MAIL_FROM": SENDER,
        "PUBLIC_BASE_URL": "https://rights.test",
        "OPERATOR_EMAIL": "operators@rights.test",
    }.items():
        patch.setenv(name, value)


def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="rightsdesk-test-NotifierFunction",
        memory_limit_in_mb=512,
        function_version="$LATEST",
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rightsdesk-test-NotifierFunction",
        aws_request_id="test-request",
        get_remaining_time_in_millis=lambda: 60_000,
    )


_SESSION: list[boto3.Session] = []


def _session() -> boto3.Session:
    """One session for every world: a new one re-reads botocore's service models (~0.7 s each), and
    moto intercepts its clients' calls whichever mock is active."""
    if not _SESSION:
        _SESSION.append(boto3.Session(region_name=REGION))
    return _SESSION[0]


class World:
    def __init__(self, patch, prefix: str = "rightsdesk-notices"):
        self.session = _session()
        tables = create_tables_from_template(self.session, prefix)
        self.queues = create_queues_from_template(self.session, prefix)
        self.table = tables["RightsTable"]
        patch.setenv("RIGHTSDESK_TABLE", self.table)
        patch.setenv("IDEMPOTENCY_TABLE", tables["IdempotencyTable"])
        patch.setenv("MAIL_QUEUE_URL", self.queues["MailQueue"])
        patch.setenv("DELIVERY_QUEUE_URL", self.queues["DeliveryQueue"])
        config.reload()
        hashing.forget_key()
        aws_clients.forget_clients()
        bind_table(self.table)
        self.ses = self.session.client("ses")
        self.ses.verify_email_identity(EmailAddress=SENDER)
        self.sqs = self.session.client("sqs")
        self.notifier = _load_notifier()

    # ------------------------------------------------------------------ data
    def controller(self, controller_id: str, *, locale: str = "en", delivery: str = "email") -> str:
        created = registry.register(
            name=f"Shop {controller_id}",
            site_key=controller_id.replace("_", "-"),
            contact_email=f"dpo@{controller_id.replace('_', '-')}.test",
            delivery="email",
            locale=locale,
            controller_id=controller_id,
        )
        if delivery != "email":
            # Registering a webhook resolves its host (the SSRF guard); these tests have no network.
            created.controller.update(actions=[ControllerItem.delivery.set(delivery)])
        return controller_id

    def request(
        self,
        controller_id: str,
        email: str,
        *,
        status: str = Status.FORWARDED.value,
        locale: str = "en",
        created_at: datetime | None = None,
        purged: bool = False,
    ) -> str:
        """A request as the dispatcher leaves it, written directly: these tests are about who is reachable."""
        request_id = hashing.new_id("dsr")
        created = created_at or clock.now() - timedelta(days=1)
        RequestItem(
            RequestItem.key(request_id),
            RequestItem.SK,
            request_id=request_id,
            controller_id=controller_id,
            site=controller_id,
            request_type="access",
            status=status,
            locale=locale,
            email=None if purged else email,
            subject_hash=hashing.email_hash(email),
            created_at=created,
            personal_purged_at=clock.now() if purged else None,
            gsi1pk=f"CTRL#{controller_id}",
            gsi1sk=listing_key(status, created, request_id),
        ).save()
        return request_id

    # ------------------------------------------------------------------ the queue and the notifier
    def receive(self, limit: int = 10) -> list[dict]:
        return (
            self.sqs.receive_message(
                QueueUrl=self.queues["MailQueue"], MaxNumberOfMessages=limit, MessageSystemAttributeNames=["All"]
            ).get("Messages")
            or []
        )

    @staticmethod
    def event(messages: list[dict]) -> dict:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {
                        "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1")
                    },
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:MailQueue",
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }

    def invoke(self, messages: list[dict]) -> set[str]:
        """Run the handler on a batch; the ids of the messages it reported failed."""
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        try:
            answer = self.notifier.lambda_handler(self.event(messages), lambda_context())
        except BatchProcessingError:  # every record failed: the invocation fails, SQS keeps them all
            return {m["MessageId"] for m in messages}
        return {item["itemIdentifier"] for item in answer["batchItemFailures"]}

    def delete(self, messages: list[dict]) -> None:
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.queues["MailQueue"], ReceiptHandle=message["ReceiptHandle"])

    def drain(self, *, rounds: int = 1000) -> int:
        """Poll like Lambda until the queue is empty, deleting what succeeded; returns the batches run.
        Failed messages are made visible again at once (the retry schedule's delay is SQS's business)."""
        for batches in range(rounds):
            messages = self.receive()
            if not messages:
                return batches
            failed = self.invoke(messages)
            self.delete([m for m in messages if m["MessageId"] not in failed])
            for message in messages:
                if message["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queues["MailQueue"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
        raise AssertionError("the mail queue did not drain")

    def sent(self) -> list[Any]:
        from moto.backends import get_backend

        return list(get_backend("ses")[ACCOUNT][REGION].sent_messages)

    def sent_to(self) -> list[str]:
        return [message.destinations[0] for message in self.sent()]


def _load_notifier():
    """functions/notifier/app.py under a name of its own, as the local runner loads it."""
    name = "_test_notifier_app"  # loaded afresh per world: it reads its tables' names at import
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / "notifier" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class FlakySes:
    """Wraps the notifier's SES client: `fail(n)` makes the next n sends raise before reaching SES."""

    def __init__(self, client: Any):
        self.client = client
        self.failures = 0
        self.calls = 0

    def fail(self, times: int) -> None:
        self.failures = times

    def send_raw_email(self, **kwargs: Any) -> dict:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}}, "SendRawEmail"
            )
        return self.client.send_raw_email(**kwargs)


def install_flaky_ses(patch) -> FlakySes:
    flaky = FlakySes(boto3.client("ses", region_name=REGION))
    patch.setattr(notify, "_ses", lambda: flaky)
    return flaky
