"""Account lifecycles against moto in-process, each rule on the injectable clock: the inactivity
warning (at 28 days, not 27; in the holder's language; once per inactivity period), activity that
calls off a deletion, the deletion at 56 days as an erasure request the operator opens, legal
holds, cancellations within one business day, consent expiry at five years, one write per account
per day, and no personal data in what the lifecycle stores about itself. The local runner's run
(EventBridge -> account -> mail -> erasure -> dispatcher) is tests/integration/test_lifecycle.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from moto import mock_aws

from rightsdesk.audience import consents, contacts
from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import Conflict
from rightsdesk.kernel.status import Status
from rightsdesk.lifecycle import accounts, erasures, events, rules
from rightsdesk.lifecycle import run as lifecycle
from rightsdesk.platform import config, hashing
from rightsdesk.store import audit
from rightsdesk.store.items.accounts import AccountItem, ErasureSeedItem
from rightsdesk.store.items.audience import ConsentItem
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import fast_pynamodb_sessions
from tests.support.notices_world import World, aws_environment

PLATFORM = "ctl_platform"
DAY = timedelta(hours=24)


@pytest.fixture
def world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        patch.setenv("LIFECYCLE_SITE", "ctl-platform")
        patch.setenv("ACCOUNT_CLASSES", json.dumps({"trial": [7, 14]}))
        patch.setenv("ACCOUNT_SIGN_IN_URL", "https://app.example.test/login")
        fast_pynamodb_sessions(patch)
        found = World(patch, prefix="rightsdesk-lifecycle")
        found.controller(PLATFORM)
        ControllerItem(ControllerItem.key(PLATFORM), ControllerItem.SK).update(
            actions=[ControllerItem.delivery.set("internal")]
        )
        accounts.forget_recorded()
        yield found
        accounts.forget_recorded()


def at_noon(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


def move_to(moment: datetime) -> None:
    """Set the clock to `moment` (the autouse fixture puts it back after the test)."""
    clock.set_offset(clock.offset_seconds() + (moment - clock.now()).total_seconds())


def new_account(world, *, day: str = "2027-03-01", locale: str = "de", account_class: str | None = None) -> str:
    account_id = hashing.new_id("acct")
    move_to(at_noon(day))
    assert accounts.record_activity(
        account_id,
        email=f"{account_id}@holders.test",
        locale=locale,
        identities={"user_id": f"u-{account_id}"},
        account_class=account_class,
    )
    return account_id


def mail_messages(world) -> list[dict]:
    found = []
    for message in world.receive():
        found.append(json.loads(message["Body"]))
        world.sqs.delete_message(QueueUrl=world.queues["MailQueue"], ReceiptHandle=message["ReceiptHandle"])
    return found


def warning_mails(world, account_id: str) -> list[dict]:
    return [
        m
        for m in mail_messages(world)
        if m["kind"] == "account_inactivity_warning" and m["ids"]["account_id"] == account_id
    ]


def lifecycle_requests(account_email: str) -> list[RequestItem]:
    return [r for r in RequestItem.scan(RequestItem.sk == RequestItem.SK) if r.email == account_email]


# ------------------------------------------------------------------ pure rules


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        ("2026-03-02T09:00:00", "2026-03-04"),  # Monday: by the end of Tuesday
        ("2026-03-05T23:00:00", "2026-03-07"),  # Thursday: by the end of Friday
        ("2026-03-06T10:00:00", "2026-03-10"),  # Friday: by the end of Monday
        ("2026-03-07T10:00:00", "2026-03-10"),  # Saturday: by the end of Monday
        ("2026-03-08T23:59:59", "2026-03-10"),  # Sunday: by the end of Monday
    ],
)
def test_a_cancellation_is_promised_by_the_end_of_the_next_business_day(received, deadline):
    got = rules.cancel_by(datetime.fromisoformat(received).replace(tzinfo=timezone.utc))
    assert got == datetime.fromisoformat(f"{deadline}T00:00:00+00:00")


@pytest.mark.parametrize("used_at", ["00:00:00", "12:00:00", "23:59:59"])
@pytest.mark.parametrize("account_class", ["default", "trial"])
def test_no_threshold_comes_before_its_period_after_the_last_use_of_the_day(world, used_at, account_class):
    used = datetime.fromisoformat(f"2027-03-01T{used_at}+00:00")
    chosen = rules.periods(account_class)
    warn = rules.warn_at(account_class, rules.day_of(used))
    assert used + chosen.warn <= warn <= used + chosen.warn + DAY
    erase = rules.erase_at(account_class, rules.day_of(used), warn)
    assert used + chosen.delete <= erase <= used + chosen.delete + DAY


def test_a_late_warning_never_shortens_the_time_left_to_keep_the_account(world):
    on_time = rules.erase_at("default", "2026-03-02", datetime(2026, 3, 31, 0, 0, tzinfo=timezone.utc))
    assert on_time == datetime(2026, 4, 28, tzinfo=timezone.utc)  # the end of the day + 56 days
    late = rules.erase_at("default", "2026-03-02", datetime(2026, 4, 20, tzinfo=timezone.utc))
    assert late == datetime(2026, 5, 18, tzinfo=timezone.utc)  # the warning + 28 days


def test_classes_have_their_own_thresholds(world):
    assert rules.periods("trial").warn == timedelta(days=7)
    assert rules.periods("trial").delete == timedelta(days=14)
    assert rules.periods("unknown-class") == rules.periods(config.DEFAULT_ACCOUNT_CLASS)


# ------------------------------------------------------------------ the inactivity warning


def test_warned_at_28_days_not_at_27_in_the_holders_language(world):
    account_id = new_account(world, day="2027-03-01", locale="de")
    mail_messages(world)
    move_to(datetime(2027, 3, 2, tzinfo=timezone.utc) + timedelta(days=27))
    report = lifecycle.run()
    assert accounts.get(account_id).state == rules.ACTIVE
    assert not warning_mails(world, account_id)
    assert account_id not in [entry.get("account_id") for entry in report.items]

    move_to(datetime(2027, 3, 2, tzinfo=timezone.utc) + timedelta(days=28, minutes=1))
    report = lifecycle.run()
    account = accounts.get(account_id)
    assert account.state == rules.WARNED and account.warned_for == "2027-03-01"
    [message] = warning_mails(world, account_id)
    assert "@" not in json.dumps(message)  # the queue carries ids only

    # the notifier makes it from the account: German, with when it goes and how to keep it
    to, locale, context = accounts.warning_mail(account_id, "2027-03-01")
    assert (to, locale) == (f"{account_id}@holders.test", "de")
    assert context["erase_at"].startswith("2027-04-27")
    from rightsdesk.render import own_mail

    rendered = own_mail.render("account_inactivity_warning", locale, context)
    assert "Ihr Konto wird am" in rendered.subject
    assert "https://app.example.test/login" in rendered.html

    # once per inactivity period: the next run neither warns nor mails again
    lifecycle.run()
    assert not warning_mails(world, account_id)
    trail = [event.action for event in audit.trail(AccountItem.key(account_id))]
    assert trail.count(lifecycle.WARNED) == 1


def test_activity_after_the_warning_calls_off_the_deletion_and_is_audited(world):
    account_id = new_account(world, day="2027-03-01")
    move_to(datetime(2027, 3, 30, 1, tzinfo=timezone.utc))
    lifecycle.run()
    assert accounts.get(account_id).state == rules.WARNED

    move_to(datetime(2027, 4, 9, 9, tzinfo=timezone.utc))
    assert accounts.record_activity(account_id)
    account = accounts.get(account_id)
    assert account.state == rules.ACTIVE and account.last_active_day == "2027-04-09"
    events_ = audit.trail(account.pk)
    assert [(e.action, e.from_status, e.to_status) for e in events_ if e.action == "deletion_cancelled"] == [
        ("deletion_cancelled", rules.WARNED, rules.ACTIVE)
    ]
    # the warning's mail, if it is only sent now, is dropped: the account is no longer warned
    assert accounts.warning_mail(account_id, "2027-03-01") is None

    move_to(datetime(2027, 4, 27, 1, tzinfo=timezone.utc))  # the old deletion time passes
    lifecycle.run()
    assert accounts.get(account_id).state == rules.ACTIVE
    assert not lifecycle_requests(f"{account_id}@holders.test")


def test_a_warning_whose_mail_never_left_is_given_again_before_any_erasure(world, monkeypatch):
    account_id = new_account(world, day="2027-03-01")
    move_to(datetime(2027, 3, 30, 1, tzinfo=timezone.utc))

    def down(*args, **kwargs):
        raise RuntimeError("the mail queue is down")

    monkeypatch.setattr(lifecycle.outbox, "enqueue_mail", down)
    with pytest.raises(RuntimeError):
        lifecycle.run()  # the warning's write went; its mail did not
    monkeypatch.undo()
    assert accounts.get(account_id).state == rules.WARNED
    assert not warning_mails(world, account_id)

    move_to(datetime(2027, 4, 27, 2, tzinfo=timezone.utc))  # the deletion threshold
    report = lifecycle.run()
    assert report.counts["warned_again"] == 1 and not report.counts["erasure_opened"]
    assert len(warning_mails(world, account_id)) == 1
    account = accounts.get(account_id)
    assert account.warning_queued_at is not None
    assert accounts.warning_mail(account_id, "2027-03-01")[2]["erase_at"].startswith("2027-05-25")  # 28 days on
    move_to(datetime(2027, 5, 25, 3, tzinfo=timezone.utc))
    assert lifecycle.run().counts["erasure_opened"] == 1


# ------------------------------------------------------------------ deletion


def test_deleted_at_56_days_through_an_erasure_request_the_operator_opens(world):
    account_id = new_account(world, day="2027-03-01")
    move_to(datetime(2027, 3, 30, 1, tzinfo=timezone.utc))
    lifecycle.run()
    move_to(datetime(2027, 4, 26, 23, tzinfo=timezone.utc))  # 55 days and 23 hours
    lifecycle.run()
    assert accounts.find(account_id) is not None

    # 56 days after the last active day, and never less than 28 days after the warning went (01:00)
    move_to(datetime(2027, 4, 27, 0, 30, tzinfo=timezone.utc))
    lifecycle.run()
    assert accounts.find(account_id) is not None
    move_to(datetime(2027, 4, 27, 1, 30, tzinfo=timezone.utc))
    report = lifecycle.run()
    assert report.counts["erasure_opened"] == 1
    assert accounts.find(account_id) is None
    [request] = lifecycle_requests(f"{account_id}@holders.test")
    assert (request.request_type, request.status, request.controller_id) == ("erasure", Status.VERIFIED.value, PLATFORM)
    assert request.subject_hash == hashing.email_hash(f"{account_id}@holders.test")
    opened = [e for e in audit.trail(request.pk) if e.action == erasures.OPENED]
    assert [(e.actor, e.cause, e.to_status) for e in opened] == [("lifecycle", "inactivity", "verified")]
    assert erasures.execution_identities(request.request_id, request.email) == {
        "user_id": f"u-{account_id}",
        "email": f"{account_id}@holders.test",
    }
    assert erasures.opened_for(request.request_id) == rules.INACTIVITY
    # routed to the dispatcher like every verified request
    routed = [
        json.loads(m["Body"])
        for m in world.sqs.receive_message(QueueUrl=world.queues["DeliveryQueue"], MaxNumberOfMessages=10).get(
            "Messages", []
        )
    ]
    assert {"request_id": request.request_id, "event": "route"} in routed

    lifecycle.run()  # a second run opens nothing more
    assert len(lifecycle_requests(f"{account_id}@holders.test")) == 1


def test_an_account_known_by_ids_only_is_warned_on_the_trail_and_erased_from_its_ids(world):
    move_to(at_noon("2027-03-01"))
    assert accounts.record_activity("acct_ids_only", identities={"user_id": "u-ids-only"})
    move_to(datetime(2027, 3, 30, 1, tzinfo=timezone.utc))
    lifecycle.run()
    assert not warning_mails(world, "acct_ids_only")
    [warned] = [e for e in audit.trail(AccountItem.key("acct_ids_only")) if e.action == lifecycle.WARNED]
    assert warned.cause == "inactivity_no_address"
    move_to(datetime(2027, 4, 27, 2, tzinfo=timezone.utc))
    assert lifecycle.run().counts["erasure_opened"] == 1
    [request] = [
        r
        for r in RequestItem.scan(RequestItem.sk == RequestItem.SK)
        if erasures.execution_identities(r.request_id, r.email) == {"user_id": "u-ids-only"}
    ]
    assert request.email is None and request.subject_hash  # never "CONTACT#None"


def test_a_held_account_survives_until_the_hold_is_released(world):
    account_id = new_account(world, day="2027-03-01")
    accounts.place_hold(account_id, "litigation 2026-17", actor="operator")
    with pytest.raises(Conflict):
        accounts.place_hold(account_id, "again", actor="operator")
    move_to(datetime(2027, 6, 1, tzinfo=timezone.utc))
    report = lifecycle.run()
    assert accounts.get(account_id).state == rules.ACTIVE
    assert account_id not in [entry.get("account_id") for entry in report.items]
    assert not warning_mails(world, account_id)

    accounts.release_hold(account_id, actor="operator")
    lifecycle.run()
    assert accounts.get(account_id).state == rules.WARNED  # due long ago: warned at the next run, not erased
    trail = [e.action for e in audit.trail(AccountItem.key(account_id))]
    assert {"legal_hold_placed", "legal_hold_released", lifecycle.WARNED} <= set(trail)


def test_a_hold_placed_after_the_warning_stops_the_erasure(world):
    account_id = new_account(world, day="2027-03-01")
    move_to(datetime(2027, 3, 30, 1, tzinfo=timezone.utc))
    lifecycle.run()
    accounts.place_hold(account_id, "authority inquiry", actor="operator")
    move_to(datetime(2027, 5, 30, tzinfo=timezone.utc))
    lifecycle.run()
    assert accounts.find(account_id) is not None
    assert not lifecycle_requests(f"{account_id}@holders.test")


# ------------------------------------------------------------------ cancellation


def test_a_cancellation_is_carried_out_at_the_next_run_within_one_business_day(world):
    account_id = new_account(world, day="2027-03-01")
    friday_evening = datetime(2027, 3, 5, 18, tzinfo=timezone.utc)
    move_to(friday_evening)
    assert accounts.record_cancellation(account_id)
    assert not accounts.record_cancellation(account_id)  # repeated: nothing new
    assert accounts.get(account_id).cancel_by == datetime(2027, 3, 9, tzinfo=timezone.utc)
    assert not accounts.record_activity(account_id)  # a cancelled account stays cancelled

    dry = lifecycle.run(dry_run=True)
    [entry] = [e for e in dry.items if e.get("account_id") == account_id]
    assert (entry["step"], entry["why"]) == ("erase", "cancelled by its holder")
    assert accounts.find(account_id) is not None  # the dry run wrote nothing

    move_to(friday_evening + timedelta(hours=1))
    lifecycle.run()
    [request] = lifecycle_requests(f"{account_id}@holders.test")
    assert request.created_at <= datetime(2027, 3, 9, tzinfo=timezone.utc)
    assert erasures.opened_for(request.request_id) == rules.CANCELLATION


# ------------------------------------------------------------------ consent expiry


def test_consent_expires_five_years_after_it_was_given_not_a_day_before(world):
    email = f"{hashing.new_id('c')}@contacts.test"
    move_to(at_noon("2027-03-01"))
    email_hash = contacts.subscribe(email, ["newsletter"], actor="subject")
    given = clock.now()
    consent = ConsentItem.get(contacts.ContactItem.key(email_hash), "CONSENT#newsletter")
    assert consent.gsi2pk.startswith("LIFE#")

    move_to(given + timedelta(days=5 * 365 - 1))
    lifecycle.run()
    assert not lifecycle_requests(email)

    move_to(given + timedelta(days=5 * 365, minutes=1))
    lifecycle.run()
    [request] = lifecycle_requests(email)
    assert request.request_type == "erasure" and request.subject_hash == email_hash
    assert erasures.opened_for(request.request_id) == rules.CONSENT_EXPIRY
    lifecycle.run()
    assert len(lifecycle_requests(email)) == 1


def test_consents_granted_before_the_lifecycle_are_filed_once_and_then_expire(world):
    from rightsdesk.lifecycle import backfill

    email = f"{hashing.new_id('c')}@contacts.test"
    move_to(at_noon("2027-03-01"))
    email_hash = contacts.subscribe(email, ["newsletter"], actor="subject")
    given = clock.now()
    old = ConsentItem.get(contacts.ContactItem.key(email_hash), "CONSENT#newsletter")
    old.update(actions=[ConsentItem.gsi2pk.remove(), ConsentItem.gsi2sk.remove()])  # as recorded before

    assert backfill.file_granted_consents(dry_run=True) == {"found": 1, "filed": 0, "changed": 0, "undated": 0}
    assert backfill.file_granted_consents() == {"found": 1, "filed": 1, "changed": 0, "undated": 0}
    assert backfill.file_granted_consents()["found"] == 0  # nothing twice
    move_to(given + timedelta(days=5 * 365, minutes=1))
    lifecycle.run()
    assert [r.subject_hash for r in lifecycle_requests(email)] == [email_hash]


def test_a_customers_consent_goes_with_the_account_not_at_five_years(world):
    account_id = new_account(world, day="2027-03-01")
    email = f"{account_id}@holders.test"
    contacts.subscribe(email, ["newsletter"], actor="subject")
    given = clock.now()
    accounts.place_hold(account_id, "keep the account alive for this test", actor="operator")
    move_to(given + timedelta(days=5 * 365, hours=1))
    report = lifecycle.run()
    assert report.counts["kept_with_account"] == 1
    assert not lifecycle_requests(email)


def test_a_withdrawn_consent_is_not_erased_at_five_years_from_its_grant(world):
    email = f"{hashing.new_id('c')}@contacts.test"
    move_to(at_noon("2027-03-01"))
    email_hash = contacts.subscribe(email, ["newsletter"], actor="subject")
    consents.record(email_hash, "newsletter", consents.WITHDRAWN, source="test")
    move_to(clock.now() + timedelta(days=5 * 365 + 1))
    lifecycle.run()
    assert not lifecycle_requests(email)


# ------------------------------------------------------------------ activity: one write a day


def test_one_write_per_account_per_day(world, monkeypatch):
    account_id = new_account(world, day="2027-03-01")
    first = accounts.get(account_id).last_active_at
    calls: list[str] = []
    from rightsdesk.store.items.table import _Item

    connection = AccountItem._get_connection().connection
    original = connection._make_api_call

    def counting(operation, *args, **kwargs):
        calls.append(operation)
        return original(operation, *args, **kwargs)

    monkeypatch.setattr(connection, "_make_api_call", counting)
    move_to(at_noon("2027-03-01") + timedelta(hours=5))
    assert not accounts.record_activity(account_id)  # this container knows: no call at all
    assert calls == []
    accounts.forget_recorded()  # another container: conditional writes fail, nothing read
    assert not accounts.record_activity(account_id)
    assert "GetItem" not in calls and "Query" not in calls
    assert accounts.get(account_id).last_active_at == first
    move_to(at_noon("2027-03-02"))
    assert accounts.record_activity(account_id)
    assert accounts.get(account_id).last_active_day == "2027-03-02"
    assert _Item  # the shared table


def test_a_report_without_a_class_is_filed_early_and_refiled_at_its_class(world):
    account_id = new_account(world, day="2027-03-01", account_class="trial")
    move_to(at_noon("2027-03-03"))
    assert accounts.record_activity(account_id)  # names no class: the account keeps "trial"
    assert accounts.get(account_id).account_class == "trial"
    move_to(datetime(2027, 3, 11, 1, tzinfo=timezone.utc))  # trial warns after 7 days
    lifecycle.run()
    assert accounts.get(account_id).state == rules.WARNED


def test_bad_events_are_rejected_not_retried(world):
    assert (
        events.handle({"detail-type": events.ACTIVITY, "detail": {"account_id": "someone@example.test"}})
        == events.REJECTED
    )
    assert (
        events.handle({"detail-type": events.ACTIVITY, "detail": {"account_id": "a1", "extra": 1}}) == events.REJECTED
    )
    assert (
        events.handle({"detail-type": events.ACTIVITY, "detail": {"account_id": "a1", "locale": "fr"}})
        == events.REJECTED
    )
    assert events.handle({"detail-type": events.ACTIVITY, "detail": {"account_id": "a1"}}) == events.RECORDED
    assert events.handle({"detail-type": events.ACTIVITY, "detail": {"account_id": "a1"}}) == events.REPEATED
    assert events.handle({"detail-type": events.CANCELLED, "detail": {"account_id": "a1"}}) == events.RECORDED


def test_an_events_time_is_when_it_happened_and_never_in_the_future(world):
    move_to(at_noon("2027-03-10"))
    detail = {"account_id": "acct_when_1", "at": "2027-03-08T09:00:00Z"}
    assert events.handle({"detail-type": events.ACTIVITY, "detail": detail}) == events.RECORDED
    assert accounts.get("acct_when_1").last_active_day == "2027-03-08"
    detail = {"account_id": "acct_when_2", "at": "2031-01-01T00:00:00Z"}
    assert events.handle({"detail-type": events.ACTIVITY, "detail": detail}) == events.RECORDED
    assert accounts.get("acct_when_2").last_active_day == "2027-03-10"
    bad = {"account_id": "acct_when_3", "at": "yesterday"}
    assert events.handle({"detail-type": events.ACTIVITY, "detail": bad}) == events.REJECTED


# ------------------------------------------------------------------ no personal data


def test_no_personal_data_in_audit_events_reports_or_index_keys(world):
    account_id = new_account(world, day="2027-03-01")
    email = f"{account_id}@holders.test"
    move_to(datetime(2027, 3, 30, 1, tzinfo=timezone.utc))
    report = lifecycle.run()
    move_to(datetime(2027, 4, 27, 2, tzinfo=timezone.utc))
    report2 = lifecycle.run()
    [request] = lifecycle_requests(email)
    stored = [e.attribute_values for e in audit.trail(AccountItem.key(account_id)) + audit.trail(request.pk)]
    for text in (json.dumps(report.as_dict()), json.dumps(report2.as_dict()), json.dumps(stored, default=str)):
        assert email not in text and f"u-{account_id}" not in text
    seed = ErasureSeedItem.get(request.pk, ErasureSeedItem.SK)
    assert seed.expires_at is not None  # the ids go after Rule.ERASURE_SEED at the latest
    assert accounts.find(account_id) is None  # erased: the address and the ids went with it
    listed = accounts.view(
        AccountItem(
            account_id="acct_x", account_class="default", state="active", created_at=clock.now(), email="x@y.test"
        )
    )
    assert "email" not in listed and "identities" not in listed  # without --personal, an operator listing shows neither


# ------------------------------------------------------------------ the annual report


def test_the_annual_report_counts_warnings_erasures_and_cancellations(world):
    from rightsdesk_cli.annual import report, sources

    kept = new_account(world, day="2027-03-01")
    erased = new_account(world, day="2027-03-01")
    cancelled = new_account(world, day="2027-03-01")
    move_to(datetime(2027, 3, 2, 9, tzinfo=timezone.utc))
    accounts.record_cancellation(cancelled)
    lifecycle.run()
    move_to(datetime(2027, 3, 30, 1, tzinfo=timezone.utc))
    lifecycle.run()  # both others warned
    move_to(datetime(2027, 4, 2, tzinfo=timezone.utc))
    accounts.record_activity(kept)  # called off
    move_to(datetime(2027, 4, 28, tzinfo=timezone.utc))
    lifecycle.run()
    figures = report.lifecycle_figures(sources.lifecycle(2027))
    assert figures == {
        "inactivity_warnings": 2,
        "deletions_called_off": 1,
        "cancellations": 1,
        "erasures_for_inactivity": 1,
        "erasures_for_cancellation": 1,
        "erasures_for_consent_expiry": 0,
        "erasures": 2,
    }
    assert accounts.find(erased) is None and accounts.find(kept) is not None


def test_the_sample_events_follow_the_published_schema_and_are_recorded(world):
    from pathlib import Path

    import jsonschema

    root = Path(__file__).resolve().parents[2]
    schema = json.loads((root / "layers/core/rightsdesk/lifecycle/account_events.schema.json").read_text())
    for name in ("account_activity.json", "account_cancelled.json"):
        event = json.loads((root / "events/lifecycle" / name).read_text())
        jsonschema.validate(event, schema)
        assert event["source"] == events.SOURCE
        assert events.handle(event) == events.RECORDED
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**event, "detail": {"account_id": "x@y.z"}}, schema)
