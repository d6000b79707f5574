"""The webhook event catalog holds the code: every event the dispatcher sends validates against its
type's published JSON Schema, closed (a key the code sends and the schema does not name fails), and
the published schemas change only as the compatibility rule allows (rightsdesk.outbound.event_compatibility,
against docs/openapi/events.snapshot.json).

The events are made by the real dispatcher (rightsdesk.outbound.dispatch) and payload builders,
POSTed to a local endpoint (tests/unit/test_dispatch.py's world, one of this module's own).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from standardwebhooks.webhooks import Webhook

from rightsdesk.audience import gpc
from rightsdesk.connectors import receipts
from rightsdesk.intake import submissions
from rightsdesk.kernel import clock
from rightsdesk.notices import policies
from rightsdesk.outbound import dispatch, event_catalog, event_compatibility
from rightsdesk.platform import hashing, webhooks
from rightsdesk.routing import payloads
from rightsdesk.routing.delivery import DeliveryMessage
from tests.support.aws import code_in
from tests.support.openapi import event_problems
from tests.unit import test_dispatch as world
from tests.unit.test_dispatch import Endpoint, breach_message, controller, declare, route

# test_dispatch's moto world and webhook endpoint, a module-scoped instance of this module's own
cloud, fresh = world.cloud, world.fresh

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "docs" / "openapi" / "events.snapshot.json"
REFRESH = "run `make openapi` and commit docs/openapi/"


problems = event_problems


# ------------------------------------------------------------------ what the code sends


def verified(cloud, created, **fields):
    """A verified request to `created`'s site; `fields` override the submission's."""
    submission = {"type": "access", "email": "ana@example.org", "name": "Ana Novak", "details": "chat on 3 May"}
    submission = submissions.Submission(site=created.controller.site_key, **{**submission, **fields})
    submitted = submissions.submit(submission, locale="en")
    submissions.verify(submitted.request_id, code_in(cloud.drain("MailQueue"), submitted.request_id))
    cloud.drain("MailQueue")
    cloud.drain("DeliveryQueue")
    return submissions.load_request(submitted.request_id)


def test_every_event_the_dispatcher_sends_validates_against_its_schema(cloud):
    hooked = controller(cloud, purge_after_seconds=1800)
    # a guardian's consent withdrawal, and a request without a name or details: optional fields empty
    withdrawal = verified(cloud, hooked, type="consent_withdrawal", purposes=["newsletter"], relationship="guardian")
    bare = verified(cloud, hooked, name=None, details=None)
    for request in (withdrawal, bare):
        assert dispatch.dispatch(route(request), attempt=1)["result"] == "delivered"
    notices = [
        {"event": "cancelled"},
        {"event": "overdue", "notice": "due_in_3_days"},
        {"event": "overdue", "notice": "due_today"},
        {"event": "overdue", "notice": "overdue_2"},
    ]
    for body in notices:
        message = DeliveryMessage.from_body({"request_id": bare.request_id, **body}, message_id="m")
        assert dispatch.dispatch(message, attempt=1)["result"] == "sent"
    test_event = {"request_id": "", "event": "test", "controller_id": hooked.controller.controller_id}
    assert dispatch.dispatch(DeliveryMessage.from_body(test_event, message_id="t"), attempt=1)["result"] == "ok"
    assert dispatch.dispatch(breach_message(declare(hooked), hooked), attempt=1)["result"] == "sent"
    version = policies.publish(
        policies.Publication(
            doc="privacy",
            version=f"catalog-{clock.now().timestamp()}",
            url="https://example.com/privacy/2",
            summaries={"en": "Transcripts are kept 30 days.", "de": "Transkripte 30 Tage."},
            text="Privacy policy 2",
            major=True,
        )
    ).version
    policy_message = {
        "event": webhooks.EVENT_POLICY_UPDATED,
        "controller_id": hooked.controller.controller_id,
        "doc": version.doc,
        "version": version.version,
    }
    assert dispatch.dispatch(DeliveryMessage.from_body(policy_message, message_id="p"), attempt=1)["result"] == "sent"
    signal = gpc.forward(hooked.controller.controller_id, "visitor-catalog-1", seen_at=clock.now()).signal
    gpc_message = {
        "event": webhooks.EVENT_CONSENT_GPC,
        "controller_id": hooked.controller.controller_id,
        "signal_id": signal.signal_id,
    }
    assert dispatch.dispatch(DeliveryMessage.from_body(gpc_message, message_id="g"), attempt=1)["result"] == "sent"
    executed = {
        "event": webhooks.EVENT_EXECUTED,
        "controller_id": hooked.controller.controller_id,
        "request_id": bare.request_id,
        "execution_id": "exe_catalog",
    }
    _receipt(cloud, bare.request_id)
    assert dispatch.dispatch(DeliveryMessage.from_body(executed, message_id="x"), attempt=1)["result"] == "sent"

    sent = [Webhook(hooked.webhook_secret).verify(s["body"], s["headers"]) for s in Endpoint.received]
    assert [p for event in sent for p in problems(event)] == []
    assert {event["type"] for event in sent} == set(event_catalog.names()), "every type in the catalog was sent"
    forwarded = [e["data"] for e in sent if e["type"] == webhooks.EVENT_FORWARDED]
    assert {json.dumps(d["subject"], sort_keys=True) for d in forwarded} >= {
        json.dumps({"email": "ana@example.org", "name": None, "details": None}, sort_keys=True)
    }
    assert {e["data"].get("reminder") for e in sent if e["type"] == webhooks.EVENT_OVERDUE} == {None, 2}


def _receipt(cloud, request_id: str) -> None:
    """A signed receipt with an erasure that kept a record for a legal basis, sealed."""
    kms = cloud.session.client("kms")
    signer = receipts.KmsSigner(
        kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"], client=kms
    )
    now = clock.now()
    receipts.record(
        request_id,
        receipts.Outcome(
            connector_id="tenant-billing",
            kind="dynamodb",
            action=receipts.Action.ERASE,
            result=receipts.Result.DONE,
            started_at=now,
            finished_at=now,
            counts=receipts.Counts(found=2, erased=1, kept=1),
            key_hashes=[hashing.keyed_hash("catalog", "k")],
            remaining=0,
            legal_exception=receipts.LegalException("HGB §257: invoices", now, period_days=3650, kept=1),
        ),
        signer=signer,
    )
    receipts.seal(request_id, signer=signer)


def test_a_forwarded_event_after_the_purge_validates_with_no_subject(cloud):
    created = controller(cloud)
    request = verified(cloud, created)
    request.personal_purged_at = clock.now()
    data = payloads.forwarded(request, created.controller)
    assert data["subject"] is None
    assert problems({"type": webhooks.EVENT_FORWARDED, "timestamp": clock.isoformat(clock.now()), "data": data}) == []


def test_an_undocumented_key_or_a_wrong_type_fails_the_check(cloud):
    """The check can fail: the closed schema refuses what the published one would let through."""
    created = controller(cloud)
    data = payloads.test(created.controller, "tst_1")
    good = {"type": webhooks.EVENT_TEST, "timestamp": "2026-12-04T10:00:00Z", "data": data}
    assert problems(good) == []
    assert problems({**good, "data": {**data, "secret": "x"}})
    assert problems({**good, "data": {**data, "test_id": 1}})
    assert problems({**good, "timestamp": "yesterday"})
    assert problems({**good, "type": "webhook.tested"})


def test_the_catalog_names_every_event_type_the_code_defines():
    defined = {value for name, value in vars(webhooks).items() if name.startswith("EVENT_")}
    assert set(event_catalog.names()) == defined
    assert set(dispatch.NOTICE_TYPES.values()) <= defined


@pytest.mark.parametrize("name", event_catalog.names())
def test_each_schema_is_json_schema_2020_12_and_describes_the_envelope(name):
    schema = event_catalog.envelope_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["type", "timestamp", "data"]
    assert schema["properties"]["type"] == {"const": name, "description": "The event type"}
    assert event_catalog.BY_NAME[name].summary


def test_the_catalog_is_published_in_the_controller_documents_webhooks_section():
    section = event_catalog.openapi_webhooks()
    assert list(section) == list(event_catalog.names())
    for name, item in section.items():
        operation = item["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == event_catalog.envelope_schema(name)
        assert [h["name"] for h in operation["parameters"]] == ["webhook-id", "webhook-timestamp", "webhook-signature"]


def test_the_headers_documented_match_what_is_sent():
    body = webhooks.envelope(webhooks.EVENT_TEST, {"controller_id": "ctl_1", "test_id": "tst_1"})
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sent = webhooks.signed_headers([secret, secret], webhooks.webhook_id("x"), body)
    for header in event_catalog.HEADERS:
        pattern = header["schema"]["pattern"]
        assert Draft202012Validator({"type": "string", "pattern": pattern}).is_valid(sent[header["name"]])


# ------------------------------------------------------------------ the compatibility rule


def test_published_event_schemas_changed_only_additively():
    published = json.loads(SNAPSHOT.read_text())
    breaking = event_compatibility.breaking_changes(published, event_catalog.schemas())
    assert breaking == [], (
        "a published webhook event changed in a way receivers cannot absorb. Keep its schema and add the "
        "changed event as a new type (`<type>.v2`, with superseded_by on the old entry) in "
        "rightsdesk/outbound/event_catalog.py:\n  " + "\n  ".join(breaking)
    )


def test_the_snapshot_is_what_the_catalog_publishes():
    assert json.loads(SNAPSHOT.read_text()) == event_catalog.schemas(), (
        f"the event catalog changed additively: {REFRESH} (the snapshot records what was published)"
    )


BASE = {
    "type": "object",
    "required": ["id", "kind"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "note": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "inner": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
    },
}


def _changed(change) -> dict:
    schema = copy.deepcopy(BASE)
    change(schema)
    return schema


# (what changes, how, breaking?)
CHANGES = [
    ("nothing", lambda s: None, False),
    ("a description", lambda s: s["properties"]["id"].update(description="The id"), False),
    ("a new optional property", lambda s: s["properties"].update(extra={"type": "string"}), False),
    ("a new enum value", lambda s: s["properties"]["kind"]["enum"].append("c"), False),
    ("an enum dropped", lambda s: s["properties"]["kind"].pop("enum"), False),
    ("a nested new optional property", lambda s: s["properties"]["inner"]["properties"].update(y={}), False),
    ("additionalProperties allowed", lambda s: s.update(additionalProperties=True), False),
    ("a property removed", lambda s: s["properties"].pop("note"), True),
    ("a property renamed", lambda s: s["properties"].update(notes=s["properties"].pop("note")), True),
    ("a type changed", lambda s: s["properties"]["id"].update(type="integer"), True),
    ("a type made nullable", lambda s: s["properties"]["id"].update(type=["string", "null"]), True),
    ("null no longer allowed", lambda s: s["properties"]["note"].update(type="string"), True),
    ("a new required property", lambda s: (s["properties"].update(extra={}), s["required"].append("extra")), True),
    ("an optional property made required", lambda s: s["required"].append("note"), True),
    ("a required property made optional", lambda s: s["required"].remove("kind"), True),
    ("an enum value removed", lambda s: s["properties"]["kind"].update(enum=["a"]), True),
    ("an enum added", lambda s: s["properties"]["id"].update(enum=["x"]), True),
    ("array items changed", lambda s: s["properties"]["tags"]["items"].update(type="integer"), True),
    ("a nested type changed", lambda s: s["properties"]["inner"]["properties"]["x"].update(type="string"), True),
    ("a nested property removed", lambda s: s["properties"]["inner"]["properties"].pop("x"), True),
    ("a pattern added", lambda s: s["properties"]["id"].update(pattern="^x"), True),
    ("a format changed", lambda s: s["properties"]["id"].update(format="date-time"), True),
    ("a const changed", lambda s: s["properties"]["id"].update(const="x"), True),
    ("additionalProperties closed", lambda s: s.update(additionalProperties=False), True),
    ("a minimum added", lambda s: s["properties"]["inner"]["properties"]["x"].update(minimum=1), True),
]


@pytest.mark.parametrize(("change", "mutate", "breaking"), CHANGES, ids=[c[0] for c in CHANGES])
def test_the_compatibility_rule(change, mutate, breaking):
    found = event_compatibility.breaking_changes({"thing.happened": BASE}, {"thing.happened": _changed(mutate)})
    assert bool(found) is breaking, found
    assert all(line.startswith("thing.happened: ") for line in found)


def test_a_type_removed_from_the_catalog_breaks_and_a_new_one_does_not():
    assert event_compatibility.breaking_changes({"thing.happened": BASE}, {}) != []
    both = {"thing.happened": BASE, "thing.happened.v2": _changed(lambda s: s["properties"].pop("note"))}
    assert event_compatibility.breaking_changes({"thing.happened": BASE}, both) == []


def test_a_breaking_change_to_a_real_event_is_caught():
    published = event_catalog.schemas()
    changed = copy.deepcopy(published)
    del changed[webhooks.EVENT_FORWARDED]["properties"]["data"]["properties"]["subject"]
    changed[webhooks.EVENT_OVERDUE]["properties"]["data"]["properties"]["notice"]["enum"].remove("due_today")
    found = event_compatibility.breaking_changes(published, changed)
    assert found == [
        "dsr.request.forwarded: data.subject: property removed (or renamed)",
        "dsr.request.overdue: data.notice: enum value 'due_today' removed",
    ]


def test_a_superseded_type_is_announced_deprecated_beside_its_successor(monkeypatch):
    old = event_catalog.BY_NAME[webhooks.EVENT_TEST]
    renamed = f"{old.name}.v2"
    catalog = (
        event_catalog.EventType(old.name, old.summary, old.personal_data, old.data, superseded_by=renamed),
        event_catalog.EventType(renamed, old.summary, old.personal_data, old.data),
    )
    monkeypatch.setattr(event_catalog, "CATALOG", catalog)
    monkeypatch.setattr(event_catalog, "BY_NAME", {event.name: event for event in catalog})
    event_catalog._envelope.cache_clear()
    try:
        section = event_catalog.openapi_webhooks()
        assert section[old.name]["post"]["deprecated"] is True and "deprecated" not in section[renamed]["post"]
        assert f"superseded by `{renamed}`" in event_catalog.envelope_schema(old.name)["description"]
        published = {old.name: json.loads(SNAPSHOT.read_text())[old.name]}
        assert event_compatibility.breaking_changes(published, event_catalog.schemas()) == []
    finally:
        event_catalog._envelope.cache_clear()
