"""The dispatcher's core and the deadline watch against moto in-process, with a real HTTP endpoint:
one status change per delivery whatever is redelivered, retries, 410, exhaustion, email, pull,
internal, notices without personal data, deadline notices claimed once, and the breach and policy
events sent to webhook controllers."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws
from standardwebhooks.webhooks import Webhook

from rightsdesk.intake import submissions
from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import clock, retention
from rightsdesk.notices import breaches, policies
from rightsdesk.outbound import dispatch
from rightsdesk.platform import aws_clients, config, hashing, sealing, webhooks
from rightsdesk.routing import controller_lookup, deadline_watch, delivery, registry
from rightsdesk.routing.delivery import DeliveryMessage, Exhausted, RetryLater
from rightsdesk.store import queries
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import code_in, drain_queue, made, moto_cloud

REGION = "eu-central-1"


class Endpoint(http.server.BaseHTTPRequestHandler):
    """A controller's webhook: answers from `script` (204 when empty), remembers what it got."""

    script: list[int] = []  # noqa: RUF012 - shared test state on purpose
    received: list[dict] = []  # noqa: RUF012

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Endpoint.received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        self.send_response(Endpoint.script.pop(0) if Endpoint.script else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Cloud:
    def __init__(self, session: boto3.Session, table: str, queues: dict[str, str], endpoint: str):
        self.session = session
        self.table = table
        self.queues = queues
        self.endpoint = endpoint

    def drain(self, queue: str) -> list[dict]:
        return drain_queue(self.session, self.queues[queue])

    def audit(self, pk: str) -> list[dict]:
        page = self.session.client("dynamodb").query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":a": {"S": "AUDIT#"}},
        )
        return sorted(
            ({k: next(iter(v.values())) for k, v in item.items()} for item in page["Items"]), key=lambda e: e["at"]
        )

    def transitions(self, request_id: str) -> list[tuple[str | None, str]]:
        return [(e.get("from_status"), e["to_status"]) for e in self.audit(f"REQ#{request_id}") if "to_status" in e]


@pytest.fixture(scope="module")
def cloud():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        # the endpoint is plain http on loopback
        world = moto_cloud(
            patch,
            "rightsdesk-dispatch",
            data_key=True,
            region=REGION,
            env={"ALLOW_HTTP_WEBHOOKS": "true", "PUBLIC_BASE_URL": "https://privacy.example.com"},
            no_scans="delivery must not scan the table",
        )
        session, tables, queues = world.session, world.tables, world.queues
        yield Cloud(session, tables["RightsTable"], queues, f"http://127.0.0.1:{server.server_address[1]}/hook")
        aws_clients.forget_clients()
        sealing.forget_clients()
    config.reload()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def fresh(cloud):
    Endpoint.script, Endpoint.received = [], []
    cloud.drain("MailQueue")
    cloud.drain("DeliveryQueue")
    yield
    clock.set_offset(0)


def controller(cloud, mode: str = "webhook", **overrides) -> registry.NewController:
    site = hashing.new_id("s").split("_")[1]
    fields = {"name": "Acme", "site_key": f"acme-{site}", "contact_email": f"dpo-{site}@acme.example", "delivery": mode}
    if mode == "webhook":
        fields["webhook_url"] = cloud.endpoint
    return registry.register(**{**fields, **overrides})


def verified(cloud, created: registry.NewController, **fields) -> RequestItem:
    submission = Submission(
        site=created.controller.site_key,
        type="access",
        email="ana@example.org",
        name="Ana Novak",
        details="chat on 3 May",
        **fields,
    )
    submitted = submissions.submit(submission, locale="en")
    code = code_in(cloud.drain("MailQueue"), submitted.request_id)
    submissions.verify(submitted.request_id, code)
    cloud.drain("MailQueue")
    cloud.drain("DeliveryQueue")
    return submissions.load_request(submitted.request_id)


def route(request: RequestItem) -> DeliveryMessage:
    return DeliveryMessage.from_body({"request_id": request.request_id, "event": "route"}, message_id="m")


def status(request: RequestItem) -> str:
    return submissions.load_request(request.request_id).status


PERSONAL = ("ana@example.org", "Ana Novak", "chat on 3 May")


# ------------------------------------------------------------------ webhook


def test_a_delivery_is_signed_sent_once_and_changes_the_status_once(cloud):
    created = controller(cloud, purge_after_seconds=1800)
    request = verified(cloud, created)

    first = dispatch.dispatch(route(request), attempt=1)
    again = dispatch.dispatch(route(request), attempt=2)  # a redelivered message, idempotency aside

    assert first["result"] == "delivered" and again["result"] == "already_delivered"
    [sent] = Endpoint.received
    event = Webhook(created.webhook_secret).verify(sent["body"], sent["headers"])
    assert event["type"] == "dsr.request.forwarded" and event["data"]["subject"]["email"] == "ana@example.org"
    assert cloud.transitions(request.request_id)[-2:] == [("verified", "forwarded"), ("forwarded", "delivered")]
    stored = submissions.load_request(request.request_id)
    due = int(stored.delivered_at.timestamp()) + 1800
    assert (stored.retention_rule, stored.retention_due_at) == ("delivered_subject_data", due)
    assert stored.gsi2pk == retention.expiry_index_keys(due, stored.pk, stored.sk)["gsi2pk"]


def test_a_failed_attempt_retries_with_the_same_webhook_id(cloud):
    request = verified(cloud, controller(cloud))
    Endpoint.script = [500]

    with pytest.raises(RetryLater) as failed:
        dispatch.dispatch(route(request), attempt=1)
    assert (failed.value.delay, failed.value.cause) == (5, "http_500")
    assert status(request) == "forwarded"
    with pytest.raises(RetryLater) as failed:
        Endpoint.script = [502]
        dispatch.dispatch(route(request), attempt=4)
    assert failed.value.delay == 2 * 3600
    assert dispatch.dispatch(route(request), attempt=5)["result"] == "delivered"

    assert len({sent["headers"]["webhook-id"] for sent in Endpoint.received}) == 1
    assert len(Endpoint.received) == 3
    assert cloud.transitions(request.request_id).count(("verified", "forwarded")) == 1


def test_the_last_failed_attempt_marks_delivery_failed_and_emails_the_contact_once(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    Endpoint.script = [503]

    with pytest.raises(Exhausted):
        dispatch.dispatch(route(request), attempt=12, max_attempts=12)

    assert status(request) == "delivery_failed"
    assert cloud.transitions(request.request_id)[-1] == ("forwarded", "delivery_failed")
    [body] = cloud.drain("MailQueue")
    mail = made(body)
    assert (mail.template, mail.to) == ("delivery_failed", created.controller.contact_email)
    assert mail.context["cause"] == "http_503" and mail.context["attempts"] == 12
    assert not any(value in json.dumps(body) for value in PERSONAL)
    # Nobody could deliver it: the subject's fields are not kept for ever (rule undelivered_subject_data).
    failed = submissions.load_request(request.request_id)
    due = int(failed.updated_at.timestamp()) + 30 * 86400
    assert (failed.retention_rule, failed.retention_due_at) == ("undelivered_subject_data", due)
    assert failed.gsi2pk == retention.expiry_index_keys(due, failed.pk, failed.sk)["gsi2pk"]

    # A redrive after the endpoint was fixed: a fresh round of attempts delivers it, and the
    # delivered rule's purge replaces the 30 days.
    assert dispatch.dispatch(route(request), attempt=1)["result"] == "delivered"
    assert cloud.transitions(request.request_id)[-2:] == [("delivery_failed", "forwarded"), ("forwarded", "delivered")]
    assert submissions.load_request(request.request_id).retention_rule == "delivered_subject_data"


def test_410_switches_the_controller_to_email_tells_its_contact_and_sends_the_request_by_email(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    Endpoint.script = [410]

    outcome = dispatch.dispatch(route(request), attempt=1)

    assert outcome == {**outcome, "result": "mail_queued", "via": "email"}
    stored = controller_lookup.get_controller(created.controller.controller_id)
    # Disabled, not forgotten: the endpoint and its secret stay for a re-enable after a test event.
    assert controller_lookup.delivery_route(stored) == "email" and stored.webhook_disabled_reason == "gone_410"
    assert stored.webhook_url is not None and stored.webhook_secret_sealed is not None
    assert [(e["action"], e.get("cause")) for e in cloud.audit(stored.pk)][-1] == ("webhook_disabled", "http_410")
    bodies = cloud.drain("MailQueue")
    mails = {made(body).template: made(body) for body in bodies}
    assert set(mails) == {"webhook_disabled", "request_forwarded"}
    assert mails["request_forwarded"].context["subject_email"] == "ana@example.org"
    assert mails["webhook_disabled"].to == created.controller.contact_email
    assert mails["webhook_disabled"].context["controller_id"] == created.controller.controller_id
    assert "@" not in json.dumps(bodies), "the messages name ids only"
    assert len(Endpoint.received) == 1
    assert status(request) == "forwarded", "delivered once SES accepts the mail, not when it is queued"


# ------------------------------------------------------------------ other modes


def test_email_mode_queues_the_request_for_the_contact_in_its_locale(cloud):
    created = controller(cloud, "email", locale="sl")
    request = verified(cloud, created, relationship="agent")

    assert dispatch.dispatch(route(request), attempt=1)["via"] == "email"

    [body] = cloud.drain("MailQueue")
    mail = made(body)
    assert (mail.to, mail.locale, body["mail_id"]) == (
        created.controller.contact_email,
        "sl",
        f"forward-{request.request_id}",
    )
    assert mail.context["subject_name"] == "Ana Novak" and mail.context["relationship"] == "agent"
    assert mail.context["request_url"] == f"https://privacy.example.com/v1/controller/requests/{request.request_id}"
    assert mail.tags == {"request_id": request.request_id}, "a bounce names the request it concerns"
    assert status(request) == "forwarded" and not Endpoint.received, "queued is not delivered"


def test_pull_mode_sends_nothing_and_waits(cloud):
    request = verified(cloud, controller(cloud, "pull"))
    assert dispatch.dispatch(route(request), attempt=1)["result"] == "awaiting_pull"
    assert status(request) == "forwarded" and not cloud.drain("MailQueue") and not Endpoint.received


def test_the_operators_own_data_goes_in_progress(cloud):
    request = verified(cloud, controller(cloud, "internal"))
    assert dispatch.dispatch(route(request), attempt=1)["result"] == "in_progress"
    assert cloud.transitions(request.request_id)[-1] == ("verified", "in_progress")


def test_notices_carry_no_personal_data_by_webhook_or_by_email(cloud):
    hooked = controller(cloud)
    emailed = controller(cloud, "email")
    for created in (hooked, emailed):
        request = verified(cloud, created)
        dispatch.dispatch(route(request), attempt=1)
        cloud.drain("MailQueue")
        for body in ({"event": "cancelled"}, {"event": "overdue", "notice": "due_in_3_days"}):
            message = DeliveryMessage.from_body({"request_id": request.request_id, **body}, message_id="m")
            assert dispatch.dispatch(message, attempt=1)["result"] == "sent"
        sent = (
            [json.loads(s["body"]) for s in Endpoint.received[1:]]
            if created is hooked
            else [made(body).context for body in cloud.drain("MailQueue")]
        )
        assert len(sent) == 2
        assert not any(value in json.dumps(sent) for value in PERSONAL)
    assert [json.loads(s["body"])["type"] for s in Endpoint.received[1:]] == [
        "dsr.request.cancelled",
        "dsr.request.overdue",
    ]


def test_a_notice_whose_webhook_stays_down_is_emailed_at_the_end(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    dispatch.dispatch(route(request), attempt=1)
    message = DeliveryMessage.from_body({"request_id": request.request_id, "event": "cancelled"}, message_id="m")
    Endpoint.script = [500, 500]
    with pytest.raises(RetryLater):
        dispatch.dispatch(message, attempt=1)
    assert dispatch.dispatch(message, attempt=12, max_attempts=12) == {
        "delivery_id": message.delivery_id,
        "event": "cancelled",
        "result": "sent",
        "via": "email",
    }
    [mail] = [made(body) for body in cloud.drain("MailQueue")]
    assert mail.template == "request_notice" and mail.context["notice"] == "cancelled"


def test_a_test_event_is_sent_once_and_audited(cloud):
    created = controller(cloud)
    message = DeliveryMessage.from_body(
        {"request_id": "", "event": "test", "controller_id": created.controller.controller_id}, message_id="m1"
    )
    assert dispatch.dispatch(message, attempt=1)["cause"] == "http_204"
    event = Webhook(created.webhook_secret).verify(Endpoint.received[0]["body"], Endpoint.received[0]["headers"])
    assert event["type"] == "webhook.test"
    assert cloud.audit(ControllerItem.key(created.controller.controller_id))[-1]["action"] == "webhook_test"


# ------------------------------------------------------------------ breach and policy events


SUMMARY = "A misconfigured export exposed chat logs."


def declare(*created: registry.NewController) -> breaches.IncidentItem:
    return breaches.declare(
        breaches.Declaration(
            detected_at=clock.now() - timedelta(hours=1),
            summary=SUMMARY,
            categories=["chat_history"],
            contact="dpo@rightsdesk.test",
            controller_ids=[c.controller.controller_id for c in created],
        )
    )


def breach_message(incident, created: registry.NewController) -> DeliveryMessage:
    return DeliveryMessage.from_body(
        {
            "event": "breach.notice",
            "controller_id": created.controller.controller_id,
            "incident_id": incident.incident_id,
        },
        message_id="m",
    )


def notice_of(incident, created: registry.NewController):
    return next(n for n in breaches.notices(incident.incident_id) if n.recipient == created.controller.controller_id)


def breach_audit(cloud, incident) -> list[str]:
    return [e["cause"] for e in cloud.audit(incident.pk) if e["action"] == "breach_webhook"]


def test_a_breach_reaches_a_webhook_controller_signed_once_and_an_email_controller_not_at_all(cloud, caplog):
    hooked, emailed = controller(cloud), controller(cloud, "email")
    incident = declare(hooked, emailed)
    queued = [DeliveryMessage.from_body(body, message_id="m") for body in cloud.drain("DeliveryQueue")]
    assert [m.controller_id for m in queued] == [hooked.controller.controller_id], "no event for email delivery"
    mails = cloud.drain("MailQueue")
    assert sorted(made(m).to for m in mails) == sorted(c.controller.contact_email for c in (hooked, emailed))

    with caplog.at_level(logging.INFO, logger="rightsdesk"):
        outcome = dispatch.dispatch(queued[0], attempt=1)
        again = dispatch.dispatch(queued[0], attempt=2)  # redelivered, with no idempotency record

    assert outcome == {
        "delivery_id": queued[0].delivery_id,
        "event": "breach.notice",
        "result": "sent",
        "via": "webhook",
    }
    assert again["result"] == "already_delivered"
    [sent] = Endpoint.received
    event = Webhook(hooked.webhook_secret).verify(sent["body"], sent["headers"])
    assert event["type"] == "breach.notice"
    assert event["data"]["incident_id"] == incident.incident_id and event["data"]["summary"] == SUMMARY
    assert hooked.controller.contact_email.encode() not in sent["body"], "no recipient address"
    assert sent["headers"]["webhook-id"] == webhooks.webhook_id(queued[0].delivery_id)
    assert notice_of(incident, hooked).webhook == "delivered" and notice_of(incident, emailed).webhook is None
    assert breach_audit(cloud, incident) == [f"{hooked.controller.controller_id}:delivered:http_204"]
    assert not cloud.drain("MailQueue"), "the dispatcher sends no email for it"
    assert "controller event" in caplog.text, "the log is captured: the check below means something"
    assert SUMMARY not in caplog.text and "@" not in caplog.text, "ids and outcome words only"


def test_a_controller_event_for_a_controller_not_on_webhooks_is_left_to_the_email(cloud):
    emailed = controller(cloud, "email")
    incident = declare(emailed)
    cloud.drain("MailQueue")
    assert dispatch.dispatch(breach_message(incident, emailed), attempt=1)["result"] == "not_webhook"
    gone = DeliveryMessage.from_body(
        {"event": "breach.notice", "controller_id": "ctl_nobody", "incident_id": incident.incident_id}, message_id="m"
    )
    assert dispatch.dispatch(gone, attempt=1)["result"] == "not_webhook"
    assert not Endpoint.received and not cloud.drain("MailQueue")


def test_a_controller_event_about_something_gone_is_dropped(cloud):
    hooked, other = controller(cloud), controller(cloud)
    incident = declare(other)
    missing = DeliveryMessage.from_body(
        {
            "event": "breach.notice",
            "controller_id": hooked.controller.controller_id,
            "incident_id": "inc_00000000000000000000",
        },
        message_id="m",
    )
    not_theirs = breach_message(incident, hooked)
    policy = DeliveryMessage.from_body(
        {
            "event": "policy.updated",
            "controller_id": hooked.controller.controller_id,
            "doc": "privacy",
            "version": "1999-01",
        },
        message_id="m",
    )
    for message in (missing, not_theirs, policy):
        assert dispatch.dispatch(message, attempt=1)["result"] == "gone"
    assert not Endpoint.received


def test_a_410_disables_the_webhook_records_it_and_tells_the_contact_once(cloud):
    hooked = controller(cloud)
    incident = declare(hooked)
    cloud.drain("DeliveryQueue")
    cloud.drain("MailQueue")
    Endpoint.script = [410]

    assert dispatch.dispatch(breach_message(incident, hooked), attempt=1)["result"] == "gone_endpoint"

    stored = controller_lookup.get_controller(hooked.controller.controller_id)
    assert controller_lookup.delivery_route(stored) == "email" and stored.webhook_disabled_reason == "gone_410"
    assert [(e["action"], e.get("cause")) for e in cloud.audit(stored.pk)][-1] == ("webhook_disabled", "http_410")
    assert notice_of(incident, hooked).webhook == "disabled"
    [body] = cloud.drain("MailQueue")  # the notifier's mail is the notice: no second one, but the 410 news
    assert made(body).template == "webhook_disabled" and made(body).to == hooked.controller.contact_email
    assert dispatch.dispatch(breach_message(incident, hooked), attempt=2)["result"] == "not_webhook"
    assert not cloud.drain("MailQueue"), "told once"


def test_a_failing_webhook_is_retried_and_its_last_failure_recorded_for_the_dead_letter_queue(cloud):
    hooked = controller(cloud)
    incident = declare(hooked)
    cloud.drain("MailQueue")
    message = breach_message(incident, hooked)
    Endpoint.script = [500, 503]

    with pytest.raises(RetryLater) as failed:
        dispatch.dispatch(message, attempt=1)
    assert (failed.value.delay, failed.value.cause) == (5, "http_500") and not isinstance(failed.value, Exhausted)
    assert notice_of(incident, hooked).webhook is None, "nothing recorded while retries remain"
    with pytest.raises(Exhausted):
        dispatch.dispatch(message, attempt=12, max_attempts=12)
    assert notice_of(incident, hooked).webhook == "failed"
    assert breach_audit(cloud, incident) == [f"{hooked.controller.controller_id}:failed:http_503"]
    assert not cloud.drain("MailQueue")

    # An operator's redrive, once the endpoint works again: a fresh round delivers it.
    assert dispatch.dispatch(message, attempt=1)["result"] == "sent"
    assert notice_of(incident, hooked).webhook == "delivered"
    assert len({sent["headers"]["webhook-id"] for sent in Endpoint.received}) == 1
    assert len(Endpoint.received) == 3


def test_a_major_policy_version_goes_to_every_webhook_controller_a_minor_one_to_none(cloud):
    hooked, emailed = controller(cloud), controller(cloud, "email")
    webhook_ids = {
        c.controller_id for c in queries.list_controllers() if controller_lookup.delivery_route(c) == "webhook"
    }

    def publish(version: str, major: bool) -> list[DeliveryMessage]:
        policies.fan_out(
            policies.publish(
                policies.Publication(
                    doc="privacy",
                    version=version,
                    url=f"https://example.com/privacy/{version}",
                    summaries={"en": "Transcripts are kept 30 days."},
                    text=f"Privacy policy {version}",
                    major=major,
                )
            ).version
        )
        return [DeliveryMessage.from_body(b, message_id="m") for b in cloud.drain("DeliveryQueue")]

    assert publish("2026-11", major=False) == []
    queued = publish("2026-12", major=True)
    assert sorted(m.controller_id for m in queued) == sorted(webhook_ids)
    assert emailed.controller.controller_id not in webhook_ids and hooked.controller.controller_id in webhook_ids

    mine = next(m for m in queued if m.controller_id == hooked.controller.controller_id)
    assert dispatch.dispatch(mine, attempt=1)["result"] == "sent"
    event = Webhook(hooked.webhook_secret).verify(Endpoint.received[-1]["body"], Endpoint.received[-1]["headers"])
    assert event["type"] == "policy.updated"
    assert (event["data"]["doc"], event["data"]["version"], event["data"]["major"]) == ("privacy", "2026-12", True)
    trail = cloud.audit(hooked.controller.pk)
    assert [(e["action"], e["cause"]) for e in trail][-1] == ("policy_webhook", "privacy/2026-12:delivered:http_204")


# ------------------------------------------------------------------ deadline watch


def test_the_deadline_watch_claims_each_notice_once_and_reroutes_stuck_requests(cloud):
    created = controller(cloud)
    delivered = verified(cloud, created)
    dispatch.dispatch(route(delivered), attempt=1)
    stuck = verified(cloud, created)  # its route message was "lost" (drained by the helper)
    due = submissions.load_request(delivered.request_id).due_at

    clock.advance(16 * 60)
    deadline_watch.run()
    assert {b["request_id"]: b["event"] for b in cloud.drain("DeliveryQueue")} == {stuck.request_id: "route"}

    three_days_before = due.replace(hour=0, minute=30) - timedelta(days=3)
    clock.advance((three_days_before - clock.now()).total_seconds())
    deadline_watch.run()
    deadline_watch.run()
    on_the_day = due.replace(hour=0, minute=30)
    clock.advance((on_the_day - clock.now()).total_seconds())
    deadline_watch.run()
    deadline_watch.run()

    queued = [b for b in cloud.drain("DeliveryQueue") if b["request_id"] == delivered.request_id]
    assert [(b["event"], b["notice"]) for b in queued] == [("overdue", "due_in_3_days"), ("overdue", "due_today")]
    assert submissions.load_request(delivered.request_id).notices_sent == {"due_in_3_days", "due_today"}
    notices = [e["cause"] for e in cloud.audit(f"REQ#{delivered.request_id}") if e["action"] == "deadline_notice"]
    assert notices == ["due_in_3_days", "due_today"]


def test_delivery_ids_do_not_depend_on_the_queue_message(cloud):
    request = verified(cloud, controller(cloud, "pull"))
    one = DeliveryMessage.from_body({"request_id": request.request_id, "event": "route"}, message_id="a")
    two = DeliveryMessage.from_body({"request_id": request.request_id, "event": "route"}, message_id="b")
    assert one.key() == two.key() and delivery.DeliveryMessage.key(one)["delivery_id"].startswith("dlv_")
