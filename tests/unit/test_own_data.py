"""The operator's own data against moto in-process: the consent ledger, carrying out each right,
the operator queue, exports and erasure. The local runner's end-to-end runs are in
tests/integration/test_own_data.py; these pin the rules, including what happens on a retry."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from moto import mock_aws

from rightsdesk.audience import consents, contacts, newsletter, suppression, unsubscribe
from rightsdesk.kernel import clock, deadlines, retention
from rightsdesk.kernel.errors import Conflict, InvalidInput
from rightsdesk.kernel.status import Status
from rightsdesk.notices import breaches
from rightsdesk.outbound import notify
from rightsdesk.own_data import exports, own_requests
from rightsdesk.platform import hashing
from rightsdesk.store.items.audience import ConsentItem, ContactItem
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import fast_pynamodb_sessions, made
from tests.support.notices_world import World, aws_environment, lambda_context

PLATFORM = "ctl_platform"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        patch.setenv("SUPERVISORY_AUTHORITY_NAME", "Information Commissioner")
        patch.setenv("SUPERVISORY_AUTHORITY_URL", "https://authority.test/")
        fast_pynamodb_sessions(patch)
        found = World(patch, prefix="rightsdesk-own")
        world_controller(found)
        yield found


def world_controller(world: World) -> None:
    world.controller(PLATFORM)
    ControllerItem(ControllerItem.key(PLATFORM), ControllerItem.SK).update(
        actions=[ControllerItem.delivery.set("internal")]
    )


def own_request(email: str, kind: str, request_id: str | None = None, **fields) -> tuple[str, str]:
    """A request the dispatcher just moved to in_progress, as stored; returns (id, status token)."""
    request_id, token, now = request_id or hashing.new_id("dsr"), hashing.new_token("rst_"), clock.now()
    RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id=PLATFORM,
        site="platform",
        request_type=kind,
        status=Status.IN_PROGRESS.value,
        locale=fields.pop("locale", "en"),
        email=email,
        subject_hash=hashing.email_hash(email),
        status_token_hash=hashing.keyed_hash("status_token", token),
        created_at=now - timedelta(minutes=5),
        verified_at=now - timedelta(minutes=4),
        due_at=deadlines.due_at(now, request_type=kind, relationship=fields.get("relationship", "self")),
        updated_at=now,
        gsi1pk=f"CTRL#{PLATFORM}",
        gsi1sk=f"in_progress#{clock.isoformat(now)}#{request_id}",
        **retention.schedule(retention.Rule.SKELETON, now, RequestItem.key(request_id), RequestItem.SK),
        **fields,
    ).save()
    return request_id, token


def queued(world: World) -> list[dict]:
    """Every mail on the queue (their bodies), removed from it."""
    bodies = []
    while messages := world.receive():
        bodies += [json.loads(m["Body"]) for m in messages]
        world.delete(messages)
    return bodies


def status_of(request_id: str) -> str:
    return RequestItem.get(RequestItem.key(request_id), RequestItem.SK, consistent_read=True).status


# ------------------------------------------------------------------ the consent ledger


def test_joining_a_list_grants_and_withdrawing_leaves_it_with_the_five_year_clock(world):
    email_hash = contacts.subscribe("ana@example.org", ["newsletter", "policy_notices"], source="signup-form")
    assert consents.state(email_hash, "newsletter") == consents.GRANTED
    assert consents.state(email_hash, "policy_notices") is None, "a transactional list needs no consent"

    at = clock.now()
    left = contacts.withdraw_consent(email_hash, ["newsletter", "analytics"], source="request:dsr_1", at=at)

    assert left == ["newsletter"]
    assert contacts.get(email_hash).subscriptions == {"policy_notices"}
    item = ConsentItem.get(ContactItem.key(email_hash), "CONSENT#newsletter")
    assert (item.state, item.withdrawn_source, item.granted_source) == ("withdrawn", "request:dsr_1", "signup-form")
    assert [c.state for c in item.history] == ["granted", "withdrawn"]
    due = retention.expires_at(retention.Rule.CONSENT_RECORD, at)
    assert (item.retention_rule, item.retention_due_at, item.expires_at) == ("consent_record", due, due)
    assert item.gsi2pk == retention.expiry_bucket(due), "the sweeper finds it when it is due"
    assert consents.state(email_hash, "analytics") == "withdrawn", "recorded even without a list"

    consents.grant(email_hash, ["newsletter"], source="signup-form")
    again = ConsentItem.get(ContactItem.key(email_hash), "CONSENT#newsletter")
    assert again.state == "granted" and again.expires_at is None, "in use again: kept"
    # off the sweeper's index; on the lifecycle's, for the consent's expiry five years on (rightsdesk.lifecycle)
    assert again.gsi2pk == retention.lifecycle_bucket(
        retention.expires_at(retention.Rule.CONSENT_RECORD, again.granted_at)
    )


def test_the_one_click_unsubscribe_records_a_withdrawal(world):
    email_hash = contacts.subscribe("bo@example.org", ["newsletter"])
    unsubscribe.spend(unsubscribe.issue(email_hash, "newsletter"))
    assert consents.state(email_hash, "newsletter") == "withdrawn"
    assert ConsentItem.get(ContactItem.key(email_hash), "CONSENT#newsletter").withdrawn_source == "unsubscribe_link"


def test_a_newsletter_reaches_only_members_it_may_and_the_notifier_asks_again(world):
    keep = contacts.subscribe("keep@example.org", ["newsletter"])
    restricted = contacts.subscribe("restricted@example.org", ["newsletter"])
    bounced = contacts.subscribe("bounced@example.org", ["newsletter"])
    late = contacts.subscribe("late@example.org", ["newsletter"])
    contacts.limit_processing(restricted, contacts.RESTRICTION, actor="subject")
    suppression.suppress("bounced@example.org", suppression.BOUNCE)

    sent = newsletter.send(newsletter.Issue(issue="2026-11", subject="News", body="Hello.\n\nBye."))
    assert (sent.queued, sent.skipped) == (2, 2)
    # withdrawn after queueing, before sending: the notifier's own check stops it
    consents.record(late, "newsletter", consents.WITHDRAWN, source="request:dsr_2")
    world.drain()
    assert world.sent_to() == ["keep@example.org"]
    assert "unsubscribe" in world.sent()[0].raw_data.lower()

    assert contacts.lift(restricted, contacts.RESTRICTION, actor="operator")
    assert contacts.may_receive(restricted, "newsletter")
    assert not contacts.lift(restricted, contacts.RESTRICTION, actor="operator"), "nothing left to lift"
    assert contacts.may_receive(keep, "policy_notices") and contacts.may_receive(bounced, "policy_notices"), (
        "transactional lists are not stopped here"
    )


# ------------------------------------------------------------------ carrying out


def test_an_access_request_completes_at_once_and_its_export_is_the_subjects_alone(world):
    mine = "mine@example.org"
    contacts.subscribe(mine, ["newsletter", "policy_updates"], locale="de")
    contacts.subscribe("other@example.org", ["newsletter"])
    own_request("other@example.org", "erasure", name="Other Person")
    earlier, _ = own_request(mine, "restriction")
    assert own_requests.carry_out(earlier) == "completed"
    request_id, token = own_request(mine, "access", name="Mia Example")

    assert own_requests.carry_out(request_id) == "completed"
    assert own_requests.carry_out(request_id) == "already_completed", "a retried stream record acts once"

    request, until = exports.authorize(request_id, token)
    doc = exports.document(request, until)
    jsonschema.Draft202012Validator(exports.schema()).validate(doc)
    text = json.dumps(doc)
    assert "other@example.org" not in text and "Other Person" not in text
    assert doc["contact"]["email"] == mine and doc["contact"]["restricted_since"]
    assert {r["request_id"] for r in doc["requests"]} == {earlier, request_id}
    assert {c["purpose"]: c["state"] for c in doc["consents"]} == {"newsletter": "granted", "policy_notices": "granted"}
    assert {s["list"] for s in doc["subscriptions"]} == {"newsletter", "policy_updates"}
    html = exports.page(doc, "sl", token)
    assert "Vaši podatki" in html and mine in html

    mails = {m["mail_id"]: m for m in queued(world)}
    answered = made(mails[f"own-{request_id}-completed"])
    assert answered.template == "own_request_answered" and answered.context["export_until"]
    closed = RequestItem.get(RequestItem.key(request_id), RequestItem.SK)
    assert closed.retention_rule == "closed_internal_request", "closing schedules the 30-day purge"

    clock.advance(exports.EXPORT_DAYS * 86400 + 1)
    with pytest.raises(exports.Expired):
        exports.authorize(request_id, token)
    assert exports.link(RequestItem.get(RequestItem.key(request_id), RequestItem.SK), token) is None
    assert "7 Tage" in exports.unavailable_page("export_expired", "de")


def test_the_export_needs_the_status_token(world):
    request_id, token = own_request("t@example.org", "portability")
    with pytest.raises(exports.NotReady):
        exports.authorize(request_id, token)
    own_requests.carry_out(request_id)
    with pytest.raises(Exception) as refused:
        exports.authorize(request_id, "rst_wrong")
    assert getattr(refused.value, "status", None) == 401


def test_an_erasure_leaves_only_the_keyed_hash_and_the_audit_trail(world):
    email = "gone@example.org"
    email_hash = contacts.subscribe(email, ["newsletter", "policy_notices"])
    contacts.rectify(email_hash, name="Gone Person", actor="operator")
    earlier, _ = own_request(email, "access", name="Gone Person", details="my chats")
    own_requests.carry_out(earlier)
    incident = breaches.declare(
        breaches.Declaration(
            detected_at=clock.now() - timedelta(hours=1),
            summary="Chats were readable.",
            categories=["chat_history"],
            contact="dpo@platform.test",
            controller_ids=[PLATFORM],
            high_risk=True,
            notify_subjects=True,
        )
    )
    request_id, token = own_request(email, "erasure", relationship="guardian")

    assert own_requests.carry_out(request_id) == "completed"
    waiting = RequestItem.get(RequestItem.key(request_id), RequestItem.SK)
    assert waiting.email == email and waiting.name is None, "the address alone waits for the answer's mail"
    world.drain()  # the notifier makes the answer from the table, sends it, and only then the address goes

    assert email in world.sent_to(), "told before the address went"
    items = world.session.client("dynamodb").scan(TableName=world.table)["Items"]
    dumped = json.dumps(items)
    assert email not in dumped and "Gone Person" not in dumped and "my chats" not in dumped
    assert suppression.is_suppressed(email), "never emailed again"
    assert suppression.is_suppressed_hash(email_hash)
    assert status_of(request_id) == "completed" and status_of(earlier) == "completed"
    deleted = [e for e in AuditEvent.query(ContactItem.key(email_hash)) if e.action == "deleted"]
    assert {e.item_kind for e in deleted} >= {"CONTACT", "LIST"} and {e.cause for e in deleted} == {"erasure"}
    notice = next(breaches.notices(incident.incident_id, statuses=(breaches.SUPPRESSED,)))
    assert notice.recipient == email_hash and notice.email is None, "the incident still knows who was concerned"
    assert breaches.tally(incident)["subject"]["suppressed"] == 1
    purged = [e for e in AuditEvent.query(incident.pk) if e.action == "personal_data_purged"]
    assert [(e.item_kind, e.cause) for e in purged] == [("NOTICE", "erasure")]
    assert not contacts.may_receive(email_hash, "newsletter")

    assert own_requests.carry_out(request_id) == "already_completed"


def test_an_erasures_answer_sent_before_the_closing_write_still_takes_the_address(world, monkeypatch):
    email = "quick@example.org"
    request_id, _ = own_request(email, "erasure")
    real = own_requests.transition

    def notifier_first(request, *args, **kwargs):  # the notifier sends the answer before the close
        if args and args[0] is Status.COMPLETED:
            world.drain()
        return real(request, *args, **kwargs)

    monkeypatch.setattr(own_requests, "transition", notifier_first)
    assert own_requests.carry_out(request_id) == "completed"

    stored = RequestItem.get(RequestItem.key(request_id), RequestItem.SK)
    assert email in world.sent_to() and stored.email is None and stored.purged_by == "erasure"
    assert status_of(request_id) == "completed"


def test_an_erasure_retried_half_way_writes_each_audit_event_once(world, monkeypatch):
    email = "twice@example.org"
    email_hash = contacts.subscribe(email, ["newsletter", "marketing"])
    request_id, _ = own_request(email, "erasure")
    calls = {"n": 0}
    real = own_requests.transition

    def fail_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the stream batch failed here")
        return real(*args, **kwargs)

    monkeypatch.setattr(own_requests, "transition", fail_once)
    with pytest.raises(RuntimeError):
        own_requests.carry_out(request_id)
    assert own_requests.carry_out(request_id) == "completed"
    deleted = [e for e in AuditEvent.query(ContactItem.key(email_hash)) if e.action == "deleted"]
    assert sorted(e.item_kind for e in deleted) == ["CONTACT", "LIST", "LIST", "REQ"]


def test_consent_withdrawal_restriction_and_objection_apply_at_once(world):
    email = "c@example.org"
    email_hash = contacts.subscribe(email, ["newsletter", "marketing"])
    withdrawal, _ = own_request(email, "consent_withdrawal", purposes=["marketing"])
    objection, _ = own_request(email, "objection")

    own_requests.carry_out(withdrawal)
    assert consents.state(email_hash, "marketing") == "withdrawn"
    assert contacts.get(email_hash).subscriptions == {"newsletter"}
    assert contacts.may_receive(email_hash, "newsletter")
    own_requests.carry_out(objection)
    assert not contacts.may_receive(email_hash, "newsletter")
    assert contacts.get(email_hash).objected_at is not None
    assert status_of(withdrawal) == status_of(objection) == "completed"


# ------------------------------------------------------------------ the operator queue


def test_a_complaint_waits_for_a_person_and_its_confirmation_names_the_authority(world):
    request_id, _ = own_request("k@example.org", "complaint", locale="de")
    assert own_requests.carry_out(request_id) == "queued_for_operator"
    assert status_of(request_id) == "in_progress"
    [mail] = [made(body) for body in queued(world)]
    assert mail.context["authority_name"] == "Information Commissioner"
    rendered = notify.render(mail, mail.context)
    assert "Information Commissioner" in rendered.text and "https://authority.test/" in rendered.text
    assert rendered.subject == "Wir haben Ihre Beschwerde erhalten"

    own_requests.resolve(request_id, own_requests.APPROVE, note="We fixed the form.")
    assert status_of(request_id) == "completed"
    [answer] = queued(world)
    assert made(answer).context["note"] == "We fixed the form."
    assert "We fixed the form." not in json.dumps(answer), "the note waits on the request, not in the queue"


def test_a_rectification_is_applied_when_an_operator_approves_it(world):
    email_hash = contacts.subscribe("r@example.org", ["policy_notices"])
    request_id, _ = own_request("r@example.org", "rectification", name="Rosa Correct", details="my name is misspelt")
    own_requests.carry_out(request_id)
    with pytest.raises(InvalidInput):
        own_requests.resolve(request_id, own_requests.REJECT)  # a rejection needs a reason

    own_requests.resolve(request_id, own_requests.APPROVE, locale="sl")

    contact = contacts.get(email_hash)
    assert (contact.name, contact.locale) == ("Rosa Correct", "sl")
    assert status_of(request_id) == "completed"
    with pytest.raises(Conflict):
        own_requests.resolve(request_id, own_requests.APPROVE)


def test_an_extension_needs_a_reason_and_stops_at_three_months(world):
    request_id, _ = own_request("e@example.org", "complaint")
    request = RequestItem.get(RequestItem.key(request_id), RequestItem.SK)
    cap = deadlines.latest_extension(request.verified_at)
    with pytest.raises(InvalidInput):
        own_requests.extend(request_id, cap, reason=" ")
    with pytest.raises(InvalidInput) as too_far:
        own_requests.extend(request_id, cap + timedelta(seconds=1), reason="many documents")
    assert too_far.value.fields == {"extend_to": "beyond_legal_limit"}

    extended = own_requests.extend(request_id, cap, reason="many documents")

    assert extended.due_at == cap
    assert "due_extended" in [e.action for e in AuditEvent.query(RequestItem.key(request_id))]
    [mail] = queued(world)
    assert (made(mail).context["outcome"], made(mail).context["reason"]) == ("extended", "many documents")


# ------------------------------------------------------------------ the function


def test_the_function_carries_out_the_request_its_sample_record_names(world):
    sample = json.loads((ROOT / "events" / "own_requests" / "routed_to_operator.json").read_text())
    request_id = sample["Records"][0]["dynamodb"]["Keys"]["pk"]["S"].removeprefix("REQ#")
    own_request("ana.novak@example.org", "erasure", request_id=request_id)
    spec = importlib.util.spec_from_file_location(
        "_test_own_requests_app", ROOT / "functions" / "own_requests" / "app.py"
    )
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)

    assert handler.lambda_handler(sample, lambda_context()) == {"batchItemFailures": []}
    assert status_of(request_id) == "completed"
    assert handler.lambda_handler(sample, lambda_context()) == {"batchItemFailures": []}, "a redelivery is harmless"
