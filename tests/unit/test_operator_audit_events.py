"""Operator actions that change state through queues or the consent ledger each leave one audit event
naming the operator, with ids and counts only: a breach's resend, a newsletter issue, a consent grant
recorded by an operator, a dead-letter redrive. A refused action, or one that changes nothing, none."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws

from rightsdesk.audience import consents, contacts, newsletter
from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.notices import breaches
from rightsdesk.platform import hashing, operator_identity
from rightsdesk.store import audit, redrives
from rightsdesk.store.items.audience import ConsentItem, ContactItem
from rightsdesk.store.items.audit import AuditEvent
from tests.support.aws import fast_pynamodb_sessions
from tests.support.notices_world import World, aws_environment

OPERATOR = operator_identity.local("auditor")
WHO = OPERATOR.as_record()


@pytest.fixture
def world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        fast_pynamodb_sessions(patch)
        yield World(patch, prefix="rightsdesk-opaudit")


def stored_events(world: World, pk: str) -> list[dict]:
    """The audit events of `pk` as DynamoDB holds them (every attribute, not the model's view)."""
    found = world.session.client("dynamodb").query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :audit)",
        ExpressionAttributeValues={":pk": {"S": pk}, ":audit": {"S": AuditEvent.SK_PREFIX}},
        ConsistentRead=True,
    )["Items"]
    return found


def named_operator(item: dict) -> dict:
    return {key: value["S"] for key, value in item["operator"]["M"].items()}


def assert_nothing_personal(item: dict, *personal: str) -> None:
    text = json.dumps(item)
    for value in personal:
        assert value not in text


# ------------------------------------------------------------------ breach resend


def declared(world: World, subjects: list[str]):
    world.controller("ctl_resend")
    for email in subjects:
        world.request("ctl_resend", email)
    return breaches.declare(
        breaches.Declaration(
            detected_at=clock.now(),
            summary="A tenant could read chat logs.",
            categories=["chat_history"],
            contact="dpo@rightsdesk.test",
            controller_ids=["ctl_resend"],
            high_risk=True,
            notify_subjects=True,
        )
    )


def test_a_resend_writes_one_event_with_counts_by_kind_naming_the_operator(world):
    subjects = ["ria@example.org", "rob@example.org"]
    incident = declared(world, subjects)
    before = {e["sk"]["S"] for e in stored_events(world, incident.pk)}

    queued = breaches.resend(incident.incident_id, actor=OPERATOR)

    new = [e for e in stored_events(world, incident.pk) if e["sk"]["S"] not in before]
    assert queued == 3
    assert [(e["action"]["S"], e["actor"]["S"], e["cause"]["S"]) for e in new] == [
        ("notices_resent", "operator", "controllers_1_subjects_2")
    ]
    assert named_operator(new[0]) == WHO
    assert int(new[0]["expires_at"]["N"]) == breaches.record_expires_at(incident.detected_at)
    assert_nothing_personal(new[0], *subjects, "dpo@ctl-resend.test", "chat logs")
    assert [e.action for e in breaches.history(incident.incident_id)][:2] == ["notices_resent", "breach_declared"]


def test_a_resend_with_nothing_waiting_writes_no_event(world):
    incident = declared(world, [])
    world.drain()  # the notifier sends the controller's notice
    before = stored_events(world, incident.pk)

    assert breaches.resend(incident.incident_id, actor=OPERATOR) == 0
    assert stored_events(world, incident.pk) == before


# ------------------------------------------------------------------ newsletter send


def test_an_issue_writes_one_event_on_its_list_with_its_name_and_counts(world):
    members = ["nia@example.org", "ned@example.org"]
    for email in members:
        contacts.subscribe(email, ["marketing"], actor="subject")
    contacts.limit_processing(hashing.email_hash(members[1]), contacts.OBJECTION, actor="subject")
    pk = contacts.list_partition("marketing")

    sent = newsletter.send(
        newsletter.Issue(
            issue="2026-12", subject="Winter offers", body="Dear reader,\n\nsales.", list_name="marketing"
        ),
        actor=OPERATOR,
    )

    events = stored_events(world, pk)
    assert (sent.queued, sent.skipped) == (1, 1)
    assert [(e["action"]["S"], e["actor"]["S"]) for e in events] == [("issue_sent", "operator")]
    issue, digest, queued, skipped = events[0]["cause"]["S"].split(":")
    assert (issue, queued, skipped) == ("2026-12", "queued_1", "skipped_1") and len(digest) == 12
    assert named_operator(events[0]) == WHO
    assert_nothing_personal(events[0], *members, *(hashing.email_hash(m) for m in members), "Winter", "reader")
    assert [e.cause for e in newsletter.history("marketing")] == [events[0]["cause"]["S"]]


def test_a_refused_issue_writes_no_event(world):
    contacts.subscribe("nel@example.org", ["newsletter"], actor="subject")

    with pytest.raises(InvalidInput):
        newsletter.send(newsletter.Issue(issue="no spaces", subject="News", body="Text."), actor=OPERATOR)

    assert stored_events(world, contacts.list_partition("newsletter")) == []


# ------------------------------------------------------------------ consent grant


def test_a_grant_by_an_operator_is_one_event_on_the_contact_and_names_them_on_the_ledger(world):
    email = "gia@example.org"
    email_hash = hashing.email_hash(email)

    granted = consents.grant_by(
        email_hash, ["analytics", "marketing", "analytics"], source="ticket-4711 from gia", actor=OPERATOR
    )

    events = stored_events(world, ContactItem.key(email_hash))
    assert granted == ["analytics", "marketing"]
    assert [(e["action"]["S"], e["actor"]["S"], e["cause"]["S"]) for e in events] == [
        ("consent_granted", "operator", "analytics,marketing")
    ]
    assert named_operator(events[0]) == WHO
    # the operator's free text stays on the ledger (erased with it); the event outlives it
    assert_nothing_personal(events[0], email, "ticket-4711", "gia")
    ledger = {c["purpose"]: c for c in map(consents.view, consents.ledger(email_hash))}
    assert {p: (c["state"], c["granted_source"]) for p, c in ledger.items()} == {
        "analytics": ("granted", "ticket-4711 from gia"),
        "marketing": ("granted", "ticket-4711 from gia"),
    }
    assert ledger["analytics"]["history"][-1]["by"] == "operator"
    assert WHO["arn_hash"] not in json.dumps(ledger), "who exactly is on the audit event, not the subject's ledger"
    assert [e.action for e in audit.trail(ContactItem.key(email_hash))] == ["consent_granted"]


def test_a_withdrawal_is_one_event_whether_or_not_a_list_is_left(world):
    email_hash = contacts.subscribe("wim@example.org", ["newsletter"], actor="subject")
    consents.grant_by(email_hash, ["analytics", "marketing"], source="ticket-3", actor=OPERATOR)
    before = {e["sk"]["S"] for e in stored_events(world, ContactItem.key(email_hash))}

    left = contacts.withdraw_consent(
        email_hash, ["newsletter", "analytics", "marketing"], source="phone call with wim", actor=OPERATOR
    )

    new = [e for e in stored_events(world, ContactItem.key(email_hash)) if e["sk"]["S"] not in before]
    assert left == ["newsletter"]
    assert sorted((e["action"]["S"], e["cause"]["S"]) for e in new) == [
        ("consent_withdrawn", "analytics,marketing"),  # no list relies on them (marketing's: not joined)
        ("unsubscribed", "newsletter"),
    ]
    assert all(named_operator(e) == WHO for e in new)
    assert_nothing_personal(new[0], "wim", "phone call")
    ledger = {c["purpose"]: c for c in map(consents.view, consents.ledger(email_hash))}
    assert ledger["analytics"]["history"][-1] == {
        "state": "withdrawn",
        "at": ledger["analytics"]["withdrawn_at"],
        "source": "phone call with wim",
        "by": "operator",
    }


def test_a_grant_by_an_operator_shows_in_the_subjects_export(world):
    import jsonschema

    from rightsdesk.own_data import exports, subject_data

    email_hash = hashing.email_hash("gwen@example.org")
    consents.grant_by(email_hash, ["analytics"], source="ticket-9", actor=OPERATOR)

    held = subject_data.gather(email_hash)
    # the export's contact_history and consents, as exports.document builds them
    assert [(e.action, e.actor, e.cause) for e in held.history] == [("consent_granted", "operator", "analytics")]
    schema = exports.schema()
    ledger = [consents.view(item) for item in held.consents]
    jsonschema.validate(ledger, {"$defs": schema["$defs"], **schema["properties"]["consents"]})
    assert ledger[0]["history"][-1]["by"] == "operator"


def test_a_grant_with_an_unknown_purpose_writes_nothing(world):
    email_hash = hashing.email_hash("gus@example.org")

    with pytest.raises(InvalidInput):
        consents.grant_by(email_hash, ["analytics", "telepathy"], source="ticket-1", actor=OPERATOR)

    assert stored_events(world, ContactItem.key(email_hash)) == []
    assert list(ConsentItem.query(ContactItem.key(email_hash))) == []


def test_a_grant_through_a_list_signup_keeps_its_one_subscribed_event(world):
    email_hash = contacts.subscribe("sia@example.org", ["newsletter"], actor=OPERATOR)

    assert [e.action for e in audit.trail(ContactItem.key(email_hash))] == ["subscribed"]
    assert consents.state(email_hash, "newsletter") == consents.GRANTED


# ------------------------------------------------------------------ dead-letter redrive


def test_a_redrive_is_one_event_on_its_queue_with_counts_only(world):
    redrives.record("MailDeadLetterQueue", to="rightsdesk-local-MailQueue", mode=redrives.BY_HAND, messages=4,
                    actor=OPERATOR)  # fmt: skip

    events = stored_events(world, "DLQ#MailDeadLetterQueue")
    assert [(e["action"]["S"], e["actor"]["S"], e["cause"]["S"]) for e in events] == [
        ("dlq_redriven", "operator", "moved:rightsdesk-local-MailQueue:4")
    ]
    assert named_operator(events[0]) == WHO
    assert [e.cause for e in redrives.history("MailDeadLetterQueue")] == ["moved:rightsdesk-local-MailQueue:4"]


@pytest.mark.parametrize(
    ("queue", "to", "mode", "messages"),
    [
        ("MailDeadLetterQueue", "https://sqs.eu-central-1.amazonaws.com/1/q", redrives.BY_HAND, 1),  # a URL
        ("Mail DLQ#x", "MailQueue", redrives.BY_HAND, 1),
        ("MailDeadLetterQueue", "MailQueue", "teleport", 1),
        ("MailDeadLetterQueue", "MailQueue", redrives.MOVE_TASK, -1),
    ],
)
def test_a_redrive_recorded_wrongly_is_refused(world, queue, to, mode, messages):
    with pytest.raises(ValueError):
        redrives.record(queue, to=to, mode=mode, messages=messages, actor=OPERATOR)
