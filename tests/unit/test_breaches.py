"""Breach incidents against moto in-process: recipients, the notifier's exactly-once sending under
faults and redelivery, recording outcomes, suppression, the authority record and the operators' warnings."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from moto import mock_aws

from rightsdesk.audience import suppression
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.kernel.status import Status
from rightsdesk.notices import breach_watch, breaches
from rightsdesk.routing import delivery
from rightsdesk.store.items.notices import IncidentItem, NoticeItem
from tests.support.aws import fast_pynamodb_sessions, made
from tests.support.notices_world import World, aws_environment, install_flaky_ses


@pytest.fixture
def world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        fast_pynamodb_sessions(patch)
        yield World(patch)


def declaration(**fields) -> breaches.Declaration:
    values = {
        "detected_at": clock.now() - timedelta(hours=2),
        "summary": "Another tenant could read chat logs.",
        "categories": ["chat_history", "email"],
        "contact": "dpo@rightsdesk.test",
    }
    values.update(fields)
    return breaches.Declaration(**values)


def subjects(world: World, controller_ids: list[str], count: int) -> list[str]:
    """`count` subjects, spread over the controllers; every fifth also wrote to a second controller."""
    emails = []
    for n in range(count):
        email = f"person-{n}@example.org"
        emails.append(email)
        world.request(controller_ids[n % len(controller_ids)], email, locale=("en", "de", "sl")[n % 3])
        if n % 5 == 0 and len(controller_ids) > 1:
            world.request(controller_ids[(n + 1) % len(controller_ids)], email)
    return emails


# ------------------------------------------------------------------ who is told


def test_declaring_records_one_notice_per_recipient_and_no_address_on_the_incident(world):
    ids = [world.controller(f"ctl_{n}") for n in range(3)]
    emails = subjects(world, ids, 12)
    world.request(ids[0], "unverified@example.org", status=Status.IDENTITY_UNVERIFIED.value)
    world.request(ids[0], "purged@example.org", purged=True)

    incident = breaches.declare(declaration(controller_ids=ids, high_risk=True, notify_subjects=True))

    notices = list(breaches.notices(incident.incident_id))
    assert sorted(n.email for n in notices if n.kind == "subject") == sorted(emails)
    assert {n.recipient for n in notices if n.kind == "controller"} == set(ids)
    assert all(n.status == "pending" for n in notices)
    counts = breaches.tally(incident)
    assert counts["controller"]["pending"] == 3 and counts["subject"]["pending"] == 12
    assert incident.controllers_due_at == incident.detected_at + timedelta(hours=72) == incident.authority_due_at
    raw = json.dumps(
        world.session.client("dynamodb").get_item(
            TableName=world.table, Key={"pk": {"S": incident.pk}, "sk": {"S": IncidentItem.SK}}
        )["Item"]
    )
    assert not any(email in raw for email in emails), "the incident holds no recipient"
    twice = [n for n in notices if n.recipient == notices[3].recipient]
    assert len(twice) == 1, "a subject of two controllers gets one notice"
    assert len(world.receive(10)) == 10, "the mails are queued"


def test_subjects_are_told_only_with_high_risk_and_only_those_asked_for(world):
    controller = world.controller("ctl_a")
    world.request(controller, "someone@example.org")
    with pytest.raises(InvalidInput) as refused:
        breaches.declare(declaration(controller_ids=[controller], notify_subjects=True))
    assert refused.value.fields == {"notify_subjects": "needs_high_risk"}
    incident = breaches.declare(declaration(controller_ids=[controller], high_risk=True))
    assert breaches.tally(incident)["subject"]["pending"] == 0


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"detected_at": clock.now() + timedelta(hours=1)}, "detected_at"),
        ({"summary": " "}, "summary"),
        ({"categories": ["Chat History"]}, "categories"),
        ({"controller_ids": []}, "controllers"),
    ],
)
def test_a_declaration_is_checked(world, fields, problem):
    world.controller("ctl_a")
    with pytest.raises(InvalidInput) as refused:
        breaches.declare(declaration(**{"controller_ids": ["ctl_a"], **fields}))
    assert problem in refused.value.fields


def test_an_unknown_controller_is_not_found(world):
    with pytest.raises(NotFound):
        breaches.declare(declaration(controller_ids=["ctl_nobody"]))


# ------------------------------------------------------------------ sending exactly once


def _capture_notifier_log(world: World, monkeypatch) -> io.StringIO:
    """The notifier's JSON log lines, extras included, at INFO (pytest's capture holds the stream
    the handler was created with, so read them through a handler of our own)."""
    logger = world.notifier.logger
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    monkeypatch.setattr(logger._logger, "handlers", [*logger._logger.handlers, handler])
    monkeypatch.setattr(logger._logger, "level", logging.INFO)
    # logging caches isEnabledFor per level: an INFO line logged earlier at WARNING would stay dropped
    monkeypatch.setattr(logger._logger, "_cache", {})
    return buffer


def test_every_recipient_gets_exactly_one_notice_despite_faults_and_redelivery(world, monkeypatch):
    ids = [world.controller(f"ctl_{n}", locale=("en", "de", "sl")[n]) for n in range(3)]
    emails = subjects(world, ids, 57)
    incident = breaches.declare(declaration(controller_ids=ids, high_risk=True, notify_subjects=True))
    ses = install_flaky_ses(monkeypatch)
    logged = _capture_notifier_log(world, monkeypatch)

    # A batch fails half way: the first sends go out, the rest are reported failed and come back.
    first = world.receive()
    ses.fail(4)
    ses_calls_before = ses.calls
    failed = world.invoke(first[:6] + first[6:])
    assert 0 < len(failed) < len(first)
    # The whole batch is delivered again (as after a crash before SQS deleted anything): the sent
    # ones are answered from the idempotency records, the failed ones are sent now.
    world.invoke(first)
    world.delete(first)
    world.drain()

    recipients = [f"dpo@ctl-{n}.test" for n in range(3)] + emails
    sent = world.sent_to()
    assert sorted(sent) == sorted(recipients), "each recipient once, nobody else"
    assert ses.calls - ses_calls_before == len(recipients) + 4, "one SES call per recipient, plus the 4 that failed"
    incident.refresh()
    assert breaches.tally(incident)["total"] == {"pending": 0, "sent": 60, "failed": 0, "suppressed": 0}
    assert all(n.sent_at is not None for n in breaches.notices(incident.incident_id))
    lines = logged.getvalue()
    assert '"mail not sent"' in lines and '"mail done"' in lines, "the log is captured: the check below means something"
    assert not any(email in lines for email in recipients), "no address in any log line"


def test_a_duplicate_message_sends_once_and_records_once(world):
    controller = world.controller("ctl_a")
    incident = breaches.declare(declaration(controller_ids=[controller]))
    notice = next(breaches.notices(incident.incident_id))
    breaches.queue(incident, [notice])  # SQS delivers a copy: same mail id
    world.drain()
    assert world.sent_to() == ["dpo@ctl-a.test"]
    incident.refresh()
    assert breaches.tally(incident)["controller"] == {"pending": 0, "sent": 1, "failed": 0, "suppressed": 0}


def test_the_last_failed_attempt_marks_the_notice_failed_and_a_redrive_still_sends_it(world, monkeypatch):
    controller = world.controller("ctl_a")
    incident = breaches.declare(declaration(controller_ids=[controller]))
    ses = install_flaky_ses(monkeypatch)
    ses.fail(1)
    message = world.receive()[0]
    message.setdefault("Attributes", {})["ApproximateReceiveCount"] = "5"
    assert world.invoke([message]) == {message["MessageId"]}
    incident.refresh()
    assert breaches.tally(incident)["controller"]["failed"] == 1
    assert [n.status for n in breaches.notices(incident.incident_id)] == ["failed"]
    assert breaches.resend(incident.incident_id) == 1
    world.delete([message])
    world.drain()
    incident.refresh()
    assert breaches.tally(incident)["controller"] == {"pending": 0, "sent": 1, "failed": 0, "suppressed": 0}


def test_a_suppressed_address_is_skipped_counted_and_not_retried(world, monkeypatch):
    controller = world.controller("ctl_a")
    world.request(controller, "bounced@example.org")
    world.request(controller, "fine@example.org")
    suppression.suppress("Bounced@Example.org ", suppression.BOUNCE)
    ses = install_flaky_ses(monkeypatch)
    incident = breaches.declare(declaration(controller_ids=[controller], high_risk=True, notify_subjects=True))
    batches = world.drain()
    assert batches == 1, "nothing came back for a retry"
    assert sorted(world.sent_to()) == ["dpo@ctl-a.test", "fine@example.org"]
    assert ses.calls == 2
    incident.refresh()
    assert breaches.tally(incident)["subject"] == {"pending": 0, "sent": 1, "failed": 0, "suppressed": 1}


def test_a_notices_outcome_moves_only_forward(world):
    controller = world.controller("ctl_a")
    incident = breaches.declare(declaration(controller_ids=[controller]))
    sk = NoticeItem.sort_key("controller", controller)
    assert breaches.record_outcome(incident.incident_id, sk, "failed")
    assert breaches.record_outcome(incident.incident_id, sk, "sent"), "a redriven failure may still be sent"
    assert not breaches.record_outcome(incident.incident_id, sk, "failed"), "a sent notice stays sent"
    assert not breaches.record_outcome(incident.incident_id, sk, "sent"), "recording twice changes nothing"
    incident.refresh()
    assert breaches.tally(incident)["controller"] == {"pending": 0, "sent": 1, "failed": 0, "suppressed": 0}


# ------------------------------------------------------------------ the authority and the clock


def test_the_authority_notification_is_recorded_once(world):
    controller = world.controller("ctl_a")
    incident = breaches.declare(declaration(controller_ids=[controller]))
    with pytest.raises(InvalidInput):
        breaches.authority_notified(incident.incident_id, reference="IP-1", at=clock.now() + timedelta(hours=1))
    recorded = breaches.authority_notified(incident.incident_id, reference="IP-1", at=clock.now())
    assert recorded.authority_reference == "IP-1"
    with pytest.raises(Conflict):
        breaches.authority_notified(incident.incident_id, reference="IP-2", at=clock.now())
    assert breaches.deadlines(recorded, breaches.tally(recorded))[1]["state"] == "met_on_time"


def _operator_mails(world: World) -> list[dict]:
    found = []
    for message in world.receive():
        body = json.loads(message["Body"])
        if body["kind"] == "breach_deadline_warning":
            found.append(made(body))
        world.delete([message])
    return found


def test_operators_are_warned_12_hours_before_the_deadline_once_and_again_when_it_passes(world):
    controller = world.controller("ctl_a")
    incident = breaches.declare(declaration(controller_ids=[controller], detected_at=clock.now()))
    world.drain()  # the controller's notice is sent: only the authority record is missing
    assert breach_watch.run().warnings == {"due_in_12h": 0, "overdue": 0}

    clock.advance(60 * 3600)
    report = breach_watch.run()
    assert report.warnings["due_in_12h"] == 1
    assert breach_watch.run().warnings["due_in_12h"] == 0, "once per deadline"
    (warning,) = _operator_mails(world)
    assert warning.to == "operators@rights.test"
    assert warning.context["authority_recorded"] is False and warning.context["hours_left"] == 12

    clock.advance(12 * 3600 + 60)
    assert breach_watch.run().warnings["overdue"] == 1
    breaches.authority_notified(
        incident.incident_id,
        reference="IP-9",
        at=clock.now(),
        delay_reason="The processor confirmed the scope only on day four.",
    )
    clock.advance(3600)
    assert breach_watch.run().open == 0


def test_no_operator_address_means_the_warning_is_counted_not_claimed(world, monkeypatch):
    controller = world.controller("ctl_a")
    breaches.declare(declaration(controller_ids=[controller], detected_at=clock.now()))
    monkeypatch.setenv("OPERATOR_EMAIL", "")
    from rightsdesk.platform import config

    config.reload()
    clock.advance(61 * 3600)
    assert breach_watch.run().unaddressed == 1
    monkeypatch.setenv("OPERATOR_EMAIL", "operators@rights.test")
    config.reload()
    assert breach_watch.run().warnings["due_in_12h"] == 1, "it is sent once an address is set"


# ------------------------------------------------------------------ webhooks (the dispatcher's part)


def test_webhook_controllers_get_one_breach_notice_event_queued_each(world):
    hooked = world.controller("ctl_hook", delivery="webhook")
    emailed = world.controller("ctl_mail")
    queue = world.queues["DeliveryQueue"]
    incident = breaches.declare(declaration(controller_ids=[hooked, emailed]))

    (message,) = world.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(message["Body"])
    assert body == {"event": "breach.notice", "controller_id": hooked, "incident_id": incident.incident_id}
    assert delivery.DeliveryMessage.from_body(body, message_id=message["MessageId"]).incident_id == incident.incident_id
    assert incident.webhooks_queued == 1
    assert len(world.receive(10)) == 2, "both controllers' mails are queued all the same"
    data = breaches.webhook_data(incident.incident_id, hooked)
    assert data["summary"] == "Another tenant could read chat logs."
    assert data["notify_authority_by"] == clock.isoformat(incident.authority_due_at)
    assert "dpo@ctl-hook.test" not in json.dumps(data), "the event names no recipient"
    with pytest.raises(NotFound):
        breaches.webhook_data(incident.incident_id, "ctl_other")


def _webhook_audit(world: World, incident: IncidentItem) -> list[dict]:
    page = world.session.client("dynamodb").query(
        TableName=world.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
        ExpressionAttributeValues={":pk": {"S": incident.pk}, ":a": {"S": "AUDIT#"}},
    )
    events = [{k: next(iter(v.values())) for k, v in item.items()} for item in page["Items"]]
    return sorted((e for e in events if e["action"] == "breach_webhook"), key=lambda e: e["sk"])


def test_a_webhook_outcome_is_written_once_per_change_and_a_delivery_is_final(world):
    hooked = world.controller("ctl_hook", delivery="webhook")
    incident = breaches.declare(declaration(controller_ids=[hooked]))

    def record(outcome: str, cause: str = "http_503") -> bool:
        return breaches.record_webhook(incident.incident_id, hooked, outcome, cause=cause)

    assert record("failed")
    assert not record("failed"), "a redelivered last attempt writes nothing new"
    assert record("delivered", "http_204"), "a redrive may still deliver it"
    assert not record("delivered", "http_204"), "a redelivered message writes nothing"
    assert not record("disabled", "http_410") and not record("failed"), "delivered is final"
    assert not breaches.record_webhook(incident.incident_id, "ctl_other", "delivered", cause="http_204"), "no notice"
    assert not breaches.record_webhook("inc_gone", hooked, "delivered", cause="http_204")
    with pytest.raises(ValueError):
        record("sent")

    notice = next(breaches.notices(incident.incident_id))
    assert (notice.webhook, notice.status) == ("delivered", "pending"), "the mail's own status is untouched"
    assert notice.webhook_at is not None
    assert breaches.webhook_outcome(incident.incident_id, hooked) == "delivered"
    assert breaches.webhook_outcomes(incident) == {hooked: "delivered"}
    events = _webhook_audit(world, incident)
    assert [e["cause"] for e in events] == [f"{hooked}:failed:http_503", f"{hooked}:delivered:http_204"]
    breach_record = retention.expires_at(retention.Rule.BREACH_RECORD, incident.detected_at)
    assert {int(e["expires_at"]) for e in events} == {breach_record}, "kept as long as the incident"
    assert all(e["actor"] == "dispatcher" for e in events)
