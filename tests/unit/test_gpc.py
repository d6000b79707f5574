"""Global Privacy Control: the one reading of the `Sec-GPC` header, the ledger's withdrawal on a
verified request and on a controller's forward, the conflict with an earlier explicit grant, once
per controller and visitor, tenant isolation, and no visitor id anywhere but hashed.

Against test_dispatch's moto world and webhook endpoint (a module-scoped instance of this module's own).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from rightsdesk.audience import consents, gpc
from rightsdesk.kernel import clock
from rightsdesk.kernel import gpc as gpc_rule
from rightsdesk.kernel.errors import InvalidInput, NotFound
from rightsdesk.outbound import dispatch
from rightsdesk.platform import hashing, webhooks
from rightsdesk.routing.delivery import DeliveryMessage
from rightsdesk.store.items.audience import ContactItem
from tests.support.openapi import event_problems
from tests.unit import test_dispatch as world
from tests.unit.test_dispatch import Endpoint, controller, route

cloud, fresh = world.cloud, world.fresh

GPC_PURPOSES = {"sale_share", "cross_context_advertising"}


# ------------------------------------------------------------------ the header (W3C GPC: only `1` counts)


@pytest.mark.parametrize(
    ("value", "signal"),
    [
        ("1", True),
        (" 1", True),
        ("1 ", True),
        ("\t1\t", True),
        (" \t 1 \t ", True),
        (None, False),
        ("", False),
        (" ", False),
        ("0", False),
        ("true", False),
        ("TRUE", False),
        ("yes", False),
        ("1, 1", False),  # a repeated header, folded
        ("1,1", False),
        ("1;q=1", False),
        ("01", False),
        ("1.0", False),
        ('"1"', False),
        ("?1", False),  # a structured-header boolean is not the spec's token
        ("1\n", False),  # only HTTP's optional whitespace (space, tab) is trimmed
        ("\u00a01", False),
        ("１", False),  # a full-width digit
        ("-1", False),
        ("2", False),
    ],
)
def test_only_the_exact_value_1_is_a_signal(value, signal):
    assert gpc_rule.signal_present(value) is signal


def test_the_well_known_statement_says_gpc_true_and_a_date():
    statement = gpc_rule.well_known()
    assert statement["gpc"] is True
    clock.parse_iso(f"{statement['lastUpdate']}T00:00:00Z")  # an ISO date


# ------------------------------------------------------------------ on a request


def _ledger(email: str) -> dict[str, consents.ConsentItem]:
    return {item.purpose: item for item in consents.ledger(hashing.email_hash(email))}


def test_a_verified_request_with_the_signal_withdraws_sale_share_and_advertising_when_routed(cloud):
    created = controller(cloud)
    request = _submit_verified(cloud, created, "gpc-route@example.org", signal=False)
    dispatch.dispatch(route(request), attempt=1)
    assert request.gpc is None and _ledger("gpc-route@example.org") == {}  # without the signal: nothing

    flagged = _submit_verified(cloud, created, "gpc-route@example.org")
    assert _ledger("gpc-route@example.org") == {}, "nothing is recorded before the route"
    assert dispatch.dispatch(route(flagged), attempt=1)["result"] == "delivered"

    ledger = _ledger("gpc-route@example.org")
    assert set(ledger) == GPC_PURPOSES
    for item in ledger.values():
        assert (item.state, item.withdrawn_source) == (consents.WITHDRAWN, "gpc")
        [change] = item.history
        assert change.ref == f"request:{flagged.request_id}" and change.overrides is None
    # routed again (a redelivered message): the same withdrawal, no second entry
    dispatch.dispatch(route(flagged), attempt=2)
    assert all(len(item.history) == 1 for item in _ledger("gpc-route@example.org").values())


def _submit_verified(cloud, created, email: str, *, signal: bool = True):
    from rightsdesk.intake import submissions
    from tests.support.aws import code_in

    submission = submissions.Submission(site=created.controller.site_key, type="access", email=email)
    submitted = submissions.submit(submission, locale="en", gpc=signal)
    stored = submissions.load_request(submitted.request_id)
    assert stored.gpc is (True if signal else None)
    assert gpc.record_for_request(stored) is None, "unverified: nothing to record"
    submissions.verify(submitted.request_id, code_in(cloud.drain("MailQueue"), submitted.request_id))
    cloud.drain("MailQueue")
    cloud.drain("DeliveryQueue")
    return submissions.load_request(submitted.request_id)


def test_an_unverified_request_records_nothing_even_if_it_expires_or_is_cancelled(cloud):
    from rightsdesk.intake import submissions

    created = controller(cloud)
    submission = submissions.Submission(site=created.controller.site_key, type="access", email="gpc-unv@example.org")
    submitted = submissions.submit(submission, locale="en", gpc=True)
    cloud.drain("MailQueue")
    assert gpc.record_for_request(submissions.load_request(submitted.request_id)) is None
    assert _ledger("gpc-unv@example.org") == {}


def test_an_earlier_explicit_grant_is_overridden_but_named_and_audited(cloud):
    created = controller(cloud)
    email = "gpc-conflict@example.org"
    granted_at = clock.now() - timedelta(days=30)
    consents.grant(hashing.email_hash(email), ["sale_share"], source="operator", at=granted_at)

    flagged = _submit_verified(cloud, created, email)
    recorded = gpc.record_for_request(flagged)

    expected = f"granted:operator@{clock.isoformat(granted_at)}"
    assert recorded.conflicts == {"sale_share": expected}
    ledger = _ledger(email)
    assert ledger["sale_share"].state == consents.WITHDRAWN
    assert [c.state for c in ledger["sale_share"].history] == ["granted", "withdrawn"]
    assert ledger["sale_share"].history[-1].overrides == expected
    assert ledger["cross_context_advertising"].history[-1].overrides is None  # never granted: no conflict
    conflicts = [
        e for e in cloud.audit(ContactItem.key(hashing.email_hash(email))) if e["action"] == "consent_conflict"
    ]
    assert [e["cause"] for e in conflicts] == [f"sale_share:gpc>{expected}"]
    # what the operator's `rightsdesk consents show` prints
    assert consents.view(ledger["sale_share"])["history"][-1]["overrides"] == expected

    # a later explicit grant (the subject asked again) stands until the next signal
    consents.grant(hashing.email_hash(email), ["sale_share"], source="request:dsr_later")
    assert consents.state(hashing.email_hash(email), "sale_share") == consents.GRANTED


def test_a_signal_never_erases(cloud):
    from rightsdesk.audience import contacts

    created = controller(cloud)
    email = "gpc-keep@example.org"
    contacts.subscribe(email, ["newsletter"], locale="en", actor="subject")
    flagged = _submit_verified(cloud, created, email)
    gpc.record_for_request(flagged)
    assert contacts.get(hashing.email_hash(email)) is not None
    assert contacts.may_receive(hashing.email_hash(email), "newsletter"), "only the GPC purposes are withdrawn"
    assert _ledger(email)["newsletter"].state == consents.GRANTED


# ------------------------------------------------------------------ forwarded by a controller


def test_a_forward_is_recorded_once_per_controller_and_visitor(cloud):
    created = controller(cloud)
    cid = created.controller.controller_id
    first = gpc.forward(cid, "visitor-once-0001", seen_at=clock.now() - timedelta(minutes=5))
    [queued] = cloud.drain("DeliveryQueue")
    again = gpc.forward(cid, "visitor-once-0001")

    assert first.created and not again.created
    assert again.signal.signal_id == first.signal.signal_id
    ledger = {i.purpose: i for i in consents.ledger_at(first.signal.pk)}
    assert set(ledger) == GPC_PURPOSES
    assert all(len(i.history) == 1 and i.withdrawn_source == "gpc" for i in ledger.values())
    assert all(i.history[0].ref == f"controller:{cid}" for i in ledger.values())
    # ids only on the queue; the same event again until it is delivered, never after
    assert queued == {"event": "consent.gpc", "controller_id": cid, "signal_id": first.signal.signal_id}
    assert [m["signal_id"] for m in cloud.drain("DeliveryQueue")] == [first.signal.signal_id]
    message = DeliveryMessage.from_body(queued, message_id="g1")
    assert dispatch.dispatch(message, attempt=1)["result"] == "sent"
    assert dispatch.dispatch(message, attempt=2)["result"] == "already_delivered"
    gpc.forward(cid, "visitor-once-0001")
    assert cloud.drain("DeliveryQueue") == []

    [sent] = Endpoint.received
    event = Webhook(created.webhook_secret).verify(sent["body"], sent["headers"])
    assert event["type"] == webhooks.EVENT_CONSENT_GPC and event_problems(event) == []
    assert event["data"]["signal_id"] == first.signal.signal_id
    assert set(event["data"]["purposes"]) == GPC_PURPOSES and event["data"]["source"] == "gpc"


def test_controllers_are_isolated_and_the_visitor_id_is_stored_only_hashed(cloud):
    one, other = controller(cloud), controller(cloud)
    visitor = "visitor-shared-9z8y7x"
    mine = gpc.forward(one.controller.controller_id, visitor).signal
    theirs = gpc.forward(other.controller.controller_id, visitor).signal
    cloud.drain("DeliveryQueue")

    assert mine.signal_id != theirs.signal_id
    assert gpc.webhook_data(mine.signal_id, one.controller.controller_id)["signal_id"] == mine.signal_id
    with pytest.raises(NotFound):
        gpc.webhook_data(mine.signal_id, other.controller.controller_id)
    # the other controller's message naming my signal sends nothing to it
    foreign = DeliveryMessage.from_body(
        {"event": "consent.gpc", "controller_id": other.controller.controller_id, "signal_id": mine.signal_id},
        message_id="x",
    )
    assert dispatch.dispatch(foreign, attempt=1)["result"] == "gone"
    assert Endpoint.received == []

    everything = cloud.session.client("dynamodb").scan(TableName=cloud.table)["Items"]
    assert visitor not in json.dumps(everything), "the visitor id is stored only as a keyed hash"


@pytest.mark.parametrize(
    "visitor_id",
    ["short", "x" * 129, "ana@example.org", "has space 12345", "semi;colon;1234", "ünïcode-12345", ""],
)
def test_a_visitor_id_outside_the_rule_is_refused_and_nothing_is_stored(cloud, visitor_id):
    created = controller(cloud)
    with pytest.raises(InvalidInput) as refused:
        gpc.forward(created.controller.controller_id, visitor_id)
    assert refused.value.fields == {"visitor_id": "invalid_format"}
    assert cloud.drain("DeliveryQueue") == []


def test_a_seen_at_without_an_offset_is_read_as_utc(cloud):
    created = controller(cloud)
    naive = (clock.now() - timedelta(minutes=1)).replace(tzinfo=None)
    forwarded = gpc.forward(created.controller.controller_id, "visitor-naive-1", seen_at=naive)
    cloud.drain("DeliveryQueue")
    assert gpc.view(forwarded.signal)["seen_at"] == clock.isoformat(naive.replace(tzinfo=clock.now().tzinfo))


def test_a_seen_at_in_the_future_is_refused(cloud):
    created = controller(cloud)
    with pytest.raises(InvalidInput) as refused:
        gpc.forward(created.controller.controller_id, "visitor-future-1", seen_at=clock.now() + timedelta(hours=1))
    assert refused.value.fields == {"seen_at": "in_future"}


def test_an_email_or_pull_controller_gets_no_event_but_the_record(cloud):
    for mode in ("email", "pull"):
        created = controller(cloud, mode)
        forwarded = gpc.forward(created.controller.controller_id, f"visitor-{mode}-0001")
        [queued] = cloud.drain("DeliveryQueue")
        assert dispatch.dispatch(DeliveryMessage.from_body(queued, message_id=mode), attempt=1)["result"] == (
            "not_webhook"
        )
        assert {i.purpose for i in consents.ledger_at(forwarded.signal.pk)} == GPC_PURPOSES
    assert Endpoint.received == []
