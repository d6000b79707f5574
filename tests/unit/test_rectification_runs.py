"""An approved rectification carried out through the connectors, against moto in-process: the
operator's approval starts a run (action `rectify`) whose corrections are sealed like its identities
and appear in no message, state machine input, record or log line; the worker's steps write and read
back the product's table; the finish completes the request with a receipt that verifies and a mail
that says what was corrected where. Without enabled connectors the approval stays as it was."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from rightsdesk.audience import contacts
from rightsdesk.connectors import execution, receipts, registry, runs
from rightsdesk.kernel import clock, deadlines, retention
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.outbound import connector_runs
from rightsdesk.own_data import own_requests
from rightsdesk.platform import config, hashing, operator_identity
from rightsdesk.routing import registry as controllers
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import moto_cloud

PLATFORM = "ctl_rect_platform"
ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-users"
OLD_NAME, NEW_NAME = "Grete Fehlerr", "Grete Fehler"
OPERATOR = operator_identity.local("rectification-tester")


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        found = moto_cloud(patch, "rightsdesk-rect", data_key=True)
        kms = found.session.client("kms")
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        sfn = found.session.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="connector-runs",
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/connector-runs",
        )["stateMachineArn"]
        patch.setenv("CONNECTOR_STATE_MACHINE_ARN", machine)
        patch.setenv("RECEIPT_SIGNING_KEY_ID", key)
        config.reload()
        dynamodb = found.session.client("dynamodb")
        dynamodb.create_table(
            TableName="ProductUsers",
            KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        controllers.register(
            name="The platform",
            site_key="rect-platform",
            contact_email="dpo@rect-platform.test",
            delivery="email",
            locale="en",
            controller_id=PLATFORM,
        )
        ControllerItem(ControllerItem.key(PLATFORM), ControllerItem.SK).update(
            actions=[ControllerItem.delivery.set("internal")]
        )
        patch.setattr(runs, "SESSION_FACTORY", lambda definition, request_id: boto3.Session())
        yield found, sfn, kms, key, dynamodb
    config.reload()


@pytest.fixture
def users_table(cloud):
    """The product's users table as the only connector, enabled, declaring name and locale."""
    for stored in registry.list_connectors():
        registry.remove(stored.connector_id, actor=OPERATOR)
    registry.add(
        {
            "kind": "dynamodb",
            "id": "product-users",
            "role_arn": ROLE,
            "table_name": "ProductUsers",
            "partition_key": "email",
            "lookup": {"identity": "email", "attribute": "email"},
            "rectifiable": {"name": "display_name", "locale": "lang"},
        },
        actor=OPERATOR,
    )
    registry.enable("product-users", actor=OPERATOR)
    yield cloud[4]
    for stored in registry.list_connectors():
        registry.remove(stored.connector_id, actor=OPERATOR)


def product_user(dynamodb, email: str) -> dict:
    return dynamodb.get_item(TableName="ProductUsers", Key={"email": {"S": email}}, ConsistentRead=True)["Item"]


def queued_rectification(email: str, **fields) -> str:
    request_id, now = hashing.new_id("dsr"), clock.now()
    RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id=PLATFORM,
        site="rect-platform",
        request_type="rectification",
        status="in_progress",
        locale=fields.pop("locale", "de"),
        email=email,
        subject_hash=hashing.email_hash(email),
        created_at=now - timedelta(minutes=5),
        verified_at=now - timedelta(minutes=4),
        due_at=deadlines.due_at(now, request_type="rectification", relationship="self"),
        updated_at=now,
        **retention.schedule(retention.Rule.SKELETON, now, RequestItem.key(request_id), RequestItem.SK),
        **fields,
    ).save()
    return request_id


def run_to_the_end(request_id: str) -> list[dict]:
    """The worker's steps, as the state machine calls them; their answers."""
    item = execution.latest_item(request_id)
    answers = [execution.plan_step(request_id, item.execution_id)]
    for stage in answers[0]["stages"]:
        for connector_id in stage:
            answers.append(execution.connector_step(request_id, item.execution_id, connector_id))
    connector_runs.finish(request_id, item.execution_id)
    return answers


def test_an_approved_rectification_is_written_where_the_data_lives_and_completes_with_a_receipt(
    cloud, users_table, caplog
):
    found, sfn, kms, key, _ = cloud
    caplog.set_level(logging.DEBUG, logger="rightsdesk")
    email = "grete.rect@example.org"
    users_table.put_item(
        TableName="ProductUsers",
        Item={"email": {"S": email}, "display_name": {"S": OLD_NAME}, "lang": {"S": "en"}},
    )
    request_id = queued_rectification(email, name=NEW_NAME)

    own_requests.resolve(request_id, own_requests.APPROVE, locale="de", note="Danke für den Hinweis.", actor=OPERATOR)

    assert RequestItem.get(RequestItem.key(request_id), RequestItem.SK).status == "in_progress"  # until the run ends
    view = execution.view(request_id)
    assert (view.action, view.status) == ("rectify", "running")
    answers = run_to_the_end(request_id)

    stored = product_user(users_table, email)
    assert (stored["display_name"]["S"], stored["lang"]["S"]) == (NEW_NAME, "de")
    assert RequestItem.get(RequestItem.key(request_id), RequestItem.SK).status == "completed"
    document = receipts.export(request_id)
    public_key = receipts.public_key_pem(kms.get_public_key(KeyId=key)["PublicKey"]).encode()
    assert receipts.verify(document, public_key).valid
    [entry] = [e["body"] for e in document["entries"] if e["body"]["entry"] == "connector"]
    assert (entry["action"], entry["result"], entry["counts"]["rectified"], entry["remaining"]) == (
        "rectify",
        "done",
        1,
        0,
    )
    assert own_requests.corrected_where(request_id) == [{"source": "product-users", "rectified": 1, "found": 1}]
    # The completion mail's message carries the counts per source: the notifier reads no receipt.
    sqs = found.session.client("sqs")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=found.queues["MailQueue"], MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=found.queues["MailQueue"], ReceiptHandle=m["ReceiptHandle"])
    [completion] = [b for b in bodies if b["mail_id"] == f"own-{request_id}-completed"]
    assert completion["ids"]["receipt_rectified@product-users"] == 1
    assert NEW_NAME not in json.dumps(bodies) and email not in json.dumps(bodies)
    request = RequestItem.get(RequestItem.key(request_id), RequestItem.SK)
    context = own_requests.answered_context(request, "completed", clock.now(), None, completion["ids"])
    assert context["corrected"] == [{"source": "product-users", "rectified": 1}]

    # The corrections were sealed: not in the state machine's input, the steps' answers, the
    # run's records, the receipt or the logs.
    arn = execution.latest_item(request_id).sfn_execution_arn
    items = found.session.client("dynamodb").query(
        TableName=found.tables["RightsTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": RequestItem.key(request_id)}},
    )["Items"]
    records = [item for item in items if item["sk"]["S"] != "REQUEST"]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name.startswith("rightsdesk"))
    for text in (sfn.describe_execution(executionArn=arn)["input"], json.dumps(answers), json.dumps(records)):
        assert NEW_NAME not in text and email not in text
    assert NEW_NAME not in json.dumps(document) and NEW_NAME not in logged


def test_the_completion_mail_says_what_was_corrected_where_in_the_subjects_language():
    from rightsdesk.render import own_mail

    corrected = [{"source": "product-users", "rectified": 2, "found": 2}]
    expected = {"en": "product-users: 2 records corrected", "de": "2 Datensätze", "sl": "popravljena 2 zapisa"}
    for locale, words in expected.items():
        answered = own_mail.render(
            "own_request_answered",
            locale,
            {
                "request_id": "req_1",
                "request_type": "rectification",
                "outcome": "completed",
                "receipt": {"receipt_connectors": 1, "receipt_rectified": 2},
                "corrected": corrected,
            },
        )
        assert words in " ".join(answered.text.split()), (locale, answered.text)
        assert words in " ".join(answered.html.split())


def test_a_field_no_enabled_connector_declares_is_refused_and_nothing_starts(cloud, users_table):
    request_id = queued_rectification("fields.rect@example.org", name=NEW_NAME)
    with pytest.raises(InvalidInput) as refused:
        own_requests.resolve(request_id, own_requests.APPROVE, fields={"shoe_size": "42"}, actor=OPERATOR)
    assert refused.value.fields == {"field.shoe_size": "not_rectifiable"}
    with pytest.raises(InvalidInput) as bad_language:
        own_requests.resolve(request_id, own_requests.APPROVE, locale="xx", actor=OPERATOR)
    assert bad_language.value.fields == {"field.locale": "invalid_choice"}
    assert execution.view(request_id) is None


def test_without_enabled_connectors_the_approval_corrects_rightsdesks_contact_as_before(cloud):
    for stored in registry.list_connectors():
        registry.remove(stored.connector_id, actor=OPERATOR)
    email = "contact.rect@example.org"
    email_hash = contacts.subscribe(email, ["policy_notices"])
    request_id = queued_rectification(email, name=NEW_NAME)

    own_requests.resolve(request_id, own_requests.APPROVE, locale="sl", actor=OPERATOR)

    assert (contacts.get(email_hash).name, contacts.get(email_hash).locale) == (NEW_NAME, "sl")
    assert RequestItem.get(RequestItem.key(request_id), RequestItem.SK).status == "completed"
    assert execution.view(request_id) is None


def test_a_rectification_run_needs_the_approved_corrections(cloud, users_table):
    request_id = queued_rectification("bare.rect@example.org", name=NEW_NAME)
    with pytest.raises(InvalidInput):
        execution.start(request_id, actor=OPERATOR)
    assert execution.view(request_id) is None
