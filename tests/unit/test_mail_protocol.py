"""Mail queue messages name a kind and ids only; the notifier makes the mail from the table when it
sends it (rightsdesk.outbound.mail_kinds). Pinned as classes: every kind's message is id-shaped and makes
its mail; no value that is not an id is accepted; a purge before the send drops the mail; an email
delivery is delivered only when SES accepted it, failed when it never went, failed again when it
bounced."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from rightsdesk.audience import contacts, newsletter
from rightsdesk.kernel import clock
from rightsdesk.kernel.status import Status
from rightsdesk.notices import breaches, policies
from rightsdesk.outbound import mail_kinds, notify
from rightsdesk.platform import hashing, subject_secrets
from rightsdesk.routing import delivery
from rightsdesk.store import deletion, outbox
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import ChallengeItem, RequestItem
from tests.support.aws import fast_pynamodb_sessions, made
from tests.support.notices_world import ROOT, World, aws_environment, install_flaky_ses, lambda_context

EMAIL = "ana.novak@example.org"
NAME = "Ana Novak"
DETAILS = "chat on 3 May"
REASON = "Ana Novak asked us twice"
PERSONAL = (EMAIL, NAME, DETAILS, REASON, "ana.novak")


@pytest.fixture
def world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        fast_pynamodb_sessions(patch)
        found = World(patch, prefix="rightsdesk-mailkinds")
        found.controller("ctl_shop", locale="de")
        found.controller("ctl_platform")
        ControllerItem(ControllerItem.key("ctl_platform"), ControllerItem.SK).update(
            actions=[ControllerItem.delivery.set("internal")]
        )
        yield found


def subject_request(
    status: Status, *, controller_id: str = "ctl_shop", request_type: str = "access", note_for: str | None = None
) -> str:
    """A request of our subject in `status`, with what the mails about it read: the code's hash while
    unverified, the status token's hashes once verified, a reason waiting for one mail."""
    request_id, now = hashing.new_id("dsr"), clock.now()
    code_hash = hashing.keyed_hash("code", subject_secrets.verification_code(request_id))
    verified = status is not Status.IDENTITY_UNVERIFIED
    RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id=controller_id,
        site="shop",
        request_type=request_type,
        status=status.value,
        locale="sl",
        email=EMAIL,
        name=NAME,
        details=DETAILS,
        subject_hash=hashing.email_hash(EMAIL),
        created_at=now - timedelta(minutes=5),
        verified_at=now - timedelta(minutes=4) if verified else None,
        due_at=now + timedelta(days=30) if verified else None,
        verified_code_hash=code_hash if verified else None,
        status_token_hash=hashing.keyed_hash("status_token", subject_secrets.status_token(request_id, code_hash))
        if verified
        else None,
        mail_note=REASON if note_for else None,
        mail_note_for=note_for,
        updated_at=now,
        gsi1pk=f"CTRL#{controller_id}",
        gsi1sk=f"{status.value}#{clock.isoformat(now)}#{request_id}",
    ).save()
    if not verified:
        ChallengeItem(
            RequestItem.key(request_id),
            ChallengeItem.SK,
            code_hash=code_hash,
            attempts=0,
            created_at=now,
            expires_at=int(now.timestamp()) + 900,
        ).save()
    return request_id


def _incident() -> tuple[str, str]:
    incident = breaches.declare(
        breaches.Declaration(
            detected_at=clock.now() - timedelta(hours=2),
            summary="Chat logs were readable.",
            categories=["chat_history"],
            contact="dpo@rightsdesk.test",
            controller_ids=["ctl_shop"],
        )
    )
    notice = next(breaches.notices(incident.incident_id))
    return incident.incident_id, notice.sk


def _policy() -> dict:
    policies.publish(
        policies.Publication(
            doc="privacy",
            version="2026-12",
            url="https://example.com/privacy",
            summaries={"en": "Chats are kept 30 days.", "de": "Chats 30 Tage."},
            text="Chats are kept 30 days.",
            major=True,
        )
    )
    return {"doc": "privacy", "version": "2026-12", "controller_id": "ctl_shop"}


def _newsletter(world: World) -> dict:
    contact = contacts.subscribe(EMAIL, ["newsletter"], locale="de")
    world.sqs.purge_queue(QueueUrl=world.queues["MailQueue"])
    newsletter.send(newsletter.Issue(issue="2026-12", subject="December", body="What is new."))
    [message] = world.receive()
    world.delete([message])
    ids = json.loads(message["Body"])["ids"]
    assert ids["contact"] == contact
    return ids


def _account_warning(world: World) -> dict:
    """An account the lifecycle warned (rightsdesk.lifecycle.run), as stored."""
    from rightsdesk.lifecycle import accounts
    from rightsdesk.store.items.accounts import AccountItem

    accounts.forget_recorded()
    accounts.record_activity("acct_mail_1", email=EMAIL, locale="de")
    account = accounts.get("acct_mail_1")
    account.update(
        actions=[
            AccountItem.state.set("warned"),
            AccountItem.warned_for.set(account.last_active_day),
            AccountItem.warned_at.set(clock.now()),
        ]
    )
    return {"account_id": "acct_mail_1", "period": account.last_active_day}


# Each kind: the ids its call site names, and who the mail goes to. A kind added to mail_kinds
# without a row here fails test_the_table_covers_every_kind.
KIND_CASES = {
    "verification_code": (lambda w: {"request_id": subject_request(Status.IDENTITY_UNVERIFIED)}, EMAIL),
    "request_verified": (lambda w: {"request_id": subject_request(Status.VERIFIED)}, EMAIL),
    "status_changed": (
        lambda w: {"request_id": subject_request(Status.ACKNOWLEDGED, note_for="m-1"), "status": "acknowledged"},
        EMAIL,
    ),
    "own_request_received": (
        lambda w: {
            "request_id": subject_request(Status.IN_PROGRESS, controller_id="ctl_platform", request_type="complaint")
        },
        EMAIL,
    ),
    "own_request_answered": (
        lambda w: {
            "request_id": subject_request(
                Status.REJECTED, controller_id="ctl_platform", request_type="complaint", note_for="m-1"
            ),
            "outcome": "rejected",
            "at": clock.epoch(),
        },
        EMAIL,
    ),
    "request_forwarded": (lambda w: {"request_id": subject_request(Status.FORWARDED)}, "dpo@ctl-shop.test"),
    "request_notice": (
        lambda w: {"request_id": subject_request(Status.DELIVERED), "notice": "due_today"},
        "dpo@ctl-shop.test",
    ),
    "delivery_failed": (
        lambda w: {"request_id": subject_request(Status.DELIVERY_FAILED), "attempts": 12, "cause": "http_503"},
        "dpo@ctl-shop.test",
    ),
    "webhook_disabled": (lambda w: {"controller_id": "ctl_shop"}, "dpo@ctl-shop.test"),
    "breach_notice": (lambda w: dict(zip(("incident_id", "notice"), _incident())), "dpo@ctl-shop.test"),
    "breach_deadline_warning": (
        lambda w: {"incident_id": _incident()[0], "warning": "due_in_12h"},
        "operators@rights.test",
    ),
    "policy": (lambda w: _policy(), "dpo@ctl-shop.test"),
    "due_extended": (
        lambda w: {
            "request_id": subject_request(Status.IN_PROGRESS, note_for="m-1"),
            "status": "in_progress",
            "status_changed": 0,
        },
        EMAIL,
    ),
    "own_request_overdue": (
        lambda w: {
            "request_id": subject_request(Status.IN_PROGRESS, controller_id="ctl_platform", request_type="complaint")
        },
        EMAIL,
    ),
    "requests_overdue_digest": (
        lambda w: {"days": 7, "request_0": subject_request(Status.DELIVERED)},
        "operators@rights.test",
    ),
    "newsletter": (_newsletter, EMAIL),
    "account_inactivity_warning": (_account_warning, EMAIL),
}


def test_the_table_covers_every_kind():
    assert set(KIND_CASES) == set(mail_kinds.KINDS) == set(outbox.MAIL_IDS)


@pytest.mark.parametrize("kind", sorted(outbox.MAIL_IDS))
def test_a_message_missing_an_id_its_kind_needs_is_refused_when_queued(kind):
    needed = outbox.MAIL_IDS[kind]
    assert outbox.mail_body(kind, mail_id="m-1", **{name: "x1" for name in needed})["ids"]
    for name in needed:
        with pytest.raises(ValueError, match=f"names .*{name}"):
            outbox.mail_body(kind, mail_id="m-1", **{other: "x1" for other in needed if other != name})


def test_an_unknown_kind_is_refused_when_queued():
    with pytest.raises(ValueError, match="unknown mail kind"):
        outbox.mail_body("status_change", mail_id="m-1", request_id="dsr_1", status="completed")


@pytest.mark.parametrize("kind", sorted(KIND_CASES))
def test_every_kind_queues_ids_only_and_the_notifier_makes_its_mail_from_the_table(world, kind):
    ids_for, recipient = KIND_CASES[kind]
    body = outbox.mail_body(kind, mail_id="m-1", **ids_for(world))

    text = json.dumps(body)
    assert "@" not in text and not [value for value in PERSONAL if value in text]
    assert all(isinstance(v, int) or outbox.ID.fullmatch(v) for v in body["ids"].values()), "id-shaped only"
    mail = made(json.loads(text))  # as the notifier reads it off the queue
    assert mail is not None and mail.to == recipient
    rendered = notify.render(mail, {**mail.context, "unsubscribe_url": "https://rights.test/u"})
    assert rendered.subject and rendered.text


def test_the_secrets_are_made_at_send_time_and_never_queued(world):
    unverified = subject_request(Status.IDENTITY_UNVERIFIED)
    verified = subject_request(Status.VERIFIED)
    code_body = outbox.mail_body("verification_code", mail_id="m-code", request_id=unverified)
    token_body = outbox.mail_body("request_verified", mail_id="m-token", request_id=verified)
    code = subject_secrets.verification_code(unverified)
    stored = RequestItem.get(RequestItem.key(verified), RequestItem.SK)
    token = subject_secrets.status_token(verified, stored.verified_code_hash)

    assert code in made(code_body).context["verify_url"] and made(code_body).context["code"] == code
    assert made(token_body).context["status_url"].endswith(f"?token={token}&lang=sl")
    assert code not in json.dumps(code_body) and token not in json.dumps(token_body)
    # A different key makes different secrets: nobody without the stack's key can make them.
    hashing.forget_key()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RIGHTSDESK_HASH_KEY", "another-key")
        from rightsdesk.platform import config

        config.reload()
        assert subject_secrets.verification_code(unverified) != code
    hashing.forget_key()
    config.reload()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(min_size=1, max_size=200).filter(lambda v: not outbox.ID.fullmatch(v)))
def test_no_value_that_is_not_an_id_reaches_a_mail_message(value):
    for kind in mail_kinds.KINDS.values():
        ids = {name: "x1" for name in kind.needs}
        for name in kind.needs:
            with pytest.raises(ValueError):
                outbox.mail_body(kind.name, mail_id="m-1", **{**ids, name: value})
    with pytest.raises(ValueError):
        outbox.mail_body("request_verified", mail_id=value, request_id="dsr_1")


@pytest.mark.parametrize("address", [EMAIL, "a@b.c", "Ana Novak", "rst_" + "x" * 43 + " ", "123 456"])
def test_addresses_names_and_text_are_refused_by_name(address):
    with pytest.raises(ValueError, match="ids only"):
        outbox.mail_body("status_changed", mail_id="m-1", request_id="dsr_1", status=address)


# ------------------------------------------------------------------ the purge wins

PERSONAL_KINDS = sorted(k for k, kind in mail_kinds.KINDS.items() if kind.personal)
CONTROLLER_NOTICE_KINDS = sorted(
    k for k, kind in mail_kinds.KINDS.items() if "request_id" in kind.needs and not kind.personal
)


def test_every_mail_to_a_subject_or_with_their_data_is_personal():
    assert set(PERSONAL_KINDS) >= {
        "verification_code",
        "request_verified",
        "status_changed",
        "request_forwarded",
        "own_request_received",
        "own_request_answered",
    }
    assert all(KIND_CASES[kind][1] == EMAIL or kind == "request_forwarded" for kind in PERSONAL_KINDS)


def _purge(request_id: str) -> None:
    RequestItem.get(RequestItem.key(request_id), RequestItem.SK).update(
        actions=deletion.purge_actions(RequestItem, deletion.Cause.SWEEPER, clock.now())
    )


def _invoke(world: World, body: dict, receive_count: int = 1) -> set[str]:
    event = {
        "Records": [
            {
                "messageId": "msg-1",
                "receiptHandle": "rh-1",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:MailQueue",
                "awsRegion": "eu-central-1",
            }
        ]
    }
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    try:
        answer = world.notifier.lambda_handler(event, lambda_context())
    except BatchProcessingError:
        return {"msg-1"}
    return {item["itemIdentifier"] for item in answer["batchItemFailures"]}


@pytest.mark.parametrize("kind", CONTROLLER_NOTICE_KINDS)
def test_a_controllers_notice_about_a_purged_request_still_goes_without_personal_data(world, kind):
    ids = KIND_CASES[kind][0](world)
    _purge(ids["request_id"])
    mail = made(outbox.mail_body(kind, mail_id=f"after-{kind}", **ids))
    assert mail.to == "dpo@ctl-shop.test" and not [v for v in PERSONAL if v in json.dumps(mail.context)]


@pytest.mark.parametrize("kind", PERSONAL_KINDS)
def test_a_purge_before_the_send_drops_the_mail(world, kind, capsys):
    ids = KIND_CASES[kind][0](world)
    body = outbox.mail_body(kind, mail_id=f"purged-{kind}", **ids)
    _purge(ids["request_id"])

    assert made(body) is None, "nothing to send: the purge won"
    assert _invoke(world, body) == set(), "dropped, not retried"
    assert world.sent_to() == []
    assert '"MailDropped"' in capsys.readouterr().out, "counted"


def test_a_request_gone_or_moved_on_drops_its_mail(world):
    unverified = subject_request(Status.IDENTITY_UNVERIFIED)
    code_body = outbox.mail_body("verification_code", mail_id="m-1", request_id=unverified)
    RequestItem(RequestItem.key(unverified), RequestItem.SK).update(
        actions=[RequestItem.status.set(Status.CANCELLED.value)]
    )
    assert made(code_body) is None, "a cancelled request's code is no use"
    assert made(outbox.mail_body("request_verified", mail_id="m-2", request_id="dsr_nothing")) is None
    assert made(outbox.mail_body("webhook_disabled", mail_id="m-3", controller_id="ctl_nobody")) is None


def test_a_reason_is_read_for_its_own_mail_only(world):
    request_id = subject_request(Status.ACKNOWLEDGED, note_for="status-1")
    mine = made(outbox.mail_body("status_changed", mail_id="status-1", request_id=request_id, status="acknowledged"))
    other = made(outbox.mail_body("status_changed", mail_id="status-2", request_id=request_id, status="in_progress"))
    assert mine.context["reason"] == REASON and other.context["reason"] is None


# ------------------------------------------------------------------ delivered means delivered


def _forwarded(world: World) -> tuple[str, dict]:
    request_id = subject_request(Status.FORWARDED)
    body = outbox.mail_body("request_forwarded", mail_id=f"forward-{request_id}", request_id=request_id)
    return request_id, body


def _status(request_id: str) -> str:
    return RequestItem.get(RequestItem.key(request_id), RequestItem.SK, consistent_read=True).status


def _transitions(request_id: str) -> list[tuple[str, str, str, str]]:
    return [
        (e.from_status, e.to_status, e.actor, e.cause)
        for e in AuditEvent.query(RequestItem.key(request_id))
        if e.action == "status_changed"
    ]


def test_an_email_delivery_is_delivered_when_ses_accepted_the_mail(world):
    request_id, body = _forwarded(world)
    assert _status(request_id) == "forwarded"

    assert _invoke(world, body) == set()

    assert world.sent_to() == ["dpo@ctl-shop.test"]
    assert _status(request_id) == "delivered"
    assert _transitions(request_id) == [("forwarded", "delivered", "notifier", "delivered_email")]
    stored = RequestItem.get(RequestItem.key(request_id), RequestItem.SK)
    assert stored.retention_rule == "delivered_subject_data", "the hour after delivery starts now"
    assert _invoke(world, body) == set() and len(world.sent_to()) == 1, "a redelivered message changes nothing"


def test_a_mail_that_never_went_leaves_the_request_delivery_failed(world, monkeypatch):
    request_id, body = _forwarded(world)
    ses = install_flaky_ses(monkeypatch)
    ses.fail(2)

    assert _invoke(world, body, receive_count=1) == {"msg-1"}
    assert _status(request_id) == "forwarded", "a retry may still send it"
    assert _invoke(world, body, receive_count=notify.DEFAULT_MAX_ATTEMPTS) == {"msg-1"}, "to the dead-letter queue"

    assert _status(request_id) == "delivery_failed"
    assert _transitions(request_id)[-1] == ("forwarded", "delivery_failed", "notifier", "retries_exhausted_mail_failed")
    assert RequestItem.get(RequestItem.key(request_id), RequestItem.SK).retention_rule == "undelivered_subject_data"

    # The operator redrives the dead-letter queue once SES works again: it is delivered then.
    assert _invoke(world, body) == set()
    assert _status(request_id) == "delivered"


def _bounce(request_id: str, kind: str = "request_forwarded", bounce_type: str = "Permanent") -> dict:
    sample = json.loads((ROOT / "events" / "ses_events" / "forwarded_bounce.json").read_text())
    sample["detail"]["bounce"]["bounceType"] = bounce_type
    sample["detail"]["mail"]["tags"].update(kind=[kind], request_id=[request_id])
    return sample


def _ses_events_app():
    spec = importlib.util.spec_from_file_location(
        "_test_ses_events_bounce", ROOT / "functions" / "ses_events" / "app.py"
    )
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    return app


def test_a_bounce_reported_later_turns_delivered_into_delivery_failed_and_alerts(world, capsys):
    request_id, body = _forwarded(world)
    _invoke(world, body)
    assert _status(request_id) == "delivered"
    app = _ses_events_app()

    answer = app.lambda_handler(_bounce(request_id), lambda_context())

    assert answer["undelivered"] == request_id
    assert _status(request_id) == "delivery_failed"
    assert _transitions(request_id)[-1] == ("delivered", "delivery_failed", "ses-events", "bounced_email")
    out = capsys.readouterr().out
    assert '"DeliveryBounced"' in out, "the metric its alarm watches"
    assert "dpo@ctl-shop.test" not in out.replace('"emailAddress"', ""), "no address logged"


@pytest.mark.parametrize("case", ["transient", "other_kind", "acknowledged", "unknown_request"])
def test_other_bounces_change_no_request(world, case):
    request_id, body = _forwarded(world)
    _invoke(world, body)
    event = {
        "transient": lambda: _bounce(request_id, bounce_type="Transient"),
        "other_kind": lambda: _bounce(request_id, kind="status_changed"),
        "acknowledged": lambda: _bounce(request_id),
        "unknown_request": lambda: _bounce("dsr_00000000000000000000"),
    }[case]()
    if case == "acknowledged":
        RequestItem(RequestItem.key(request_id), RequestItem.SK).update(
            actions=[RequestItem.status.set(Status.ACKNOWLEDGED.value)]
        )
    assert delivery.record_bounce(event["detail"]) is None
    assert _status(request_id) == ("acknowledged" if case == "acknowledged" else "delivered")
