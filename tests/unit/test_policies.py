"""Policy versions, contacts and one-click unsubscribe against moto in-process."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from moto import mock_aws

from rightsdesk.audience import contacts, suppression, unsubscribe
from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.notices import policies
from rightsdesk.platform import hashing
from tests.support.aws import fast_pynamodb_sessions
from tests.support.notices_world import World, aws_environment


@pytest.fixture
def world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        fast_pynamodb_sessions(patch)
        yield World(patch)


def publication(version: str = "2026-12", **fields) -> policies.Publication:
    values = {
        "doc": "privacy",
        "version": version,
        "url": f"https://example.com/privacy/{version}",
        "summaries": {"en": "We keep chat transcripts for 30 days.", "de": "Wir speichern Chats 30 Tage."},
        "text": f"Privacy policy, version {version}.\nWe keep chat transcripts for 30 days.\n",
    }
    values.update(fields)
    return policies.Publication(**values)


def mails(world: World) -> list[email.message.EmailMessage]:
    return [email.message_from_string(m.raw_data, policy=email.policy.default) for m in world.sent()]


# ------------------------------------------------------------------ the archive


def test_versions_are_archived_and_the_current_one_is_the_latest_in_effect(world):
    now = clock.now()
    policies.publish(publication("2026-01", effective_at=now - timedelta(days=300)))
    policies.publish(publication("2026-12", major=True, effective_at=now - timedelta(days=1)))
    policies.publish(publication("2027-03", effective_at=now + timedelta(days=30)))

    archive = policies.archive("privacy")
    assert [v["version"] for v in archive["versions"]] == ["2026-01", "2026-12", "2027-03"]
    assert archive["current"]["version"] == "2026-12"
    assert [v["version"] for v in archive["upcoming"]] == ["2027-03"]
    old = policies.view(policies.get("privacy", "2026-01"))
    assert old["summaries"]["de"] == "Wir speichern Chats 30 Tage." and old["url"].endswith("/2026-01")
    with pytest.raises(NotFound):
        policies.archive("terms")


def test_a_version_never_changes_but_publishing_it_again_is_harmless(world):
    first = policies.publish(publication())
    again = policies.publish(publication(effective_at=first.version.effective_at))
    assert first.created and not again.created
    with pytest.raises(Conflict):
        policies.publish(publication(url="https://example.com/elsewhere", effective_at=first.version.effective_at))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"doc": "Privacy Policy"}, "doc"),
        ({"url": "http://example.com/p"}, "url"),
        ({"summaries": {"de": "nur Deutsch"}}, "summary"),
        ({"summaries": {"en": "x", "fr": "y"}}, "summary_fr"),
    ],
)
def test_a_publication_is_checked(world, fields, problem):
    with pytest.raises(InvalidInput) as refused:
        policies.publish(publication(**fields))
    assert problem in refused.value.fields


# ------------------------------------------------------------------ who hears about it


def test_a_major_version_reaches_every_controller_and_contact_once_in_their_language(world):
    world.controller("ctl_a", locale="de")
    world.controller("ctl_b", locale="sl")
    contacts.subscribe("ana@example.org", ["policy_notices"], locale="sl")
    contacts.subscribe("ben@example.org", ["policy_notices", "policy_updates"], locale="de")
    contacts.subscribe("dpo@ctl-a.test", ["policy_updates"])  # also a controller's contact: told once
    version = policies.publish(publication(major=True)).version

    assert policies.fan_out(version) == 4
    policies.fan_out(version)  # an interrupted fan-out run again
    world.drain()

    sent = mails(world)
    assert sorted(m["To"] for m in sent) == ["ana@example.org", "ben@example.org", "dpo@ctl-a.test", "dpo@ctl-b.test"]
    by_to = {m["To"]: m for m in sent}
    assert by_to["ben@example.org"]["Subject"] == "Wichtige Änderung: Datenschutzerklärung"
    assert "Wir speichern Chats 30 Tage." in by_to["ben@example.org"].get_body(("plain",)).get_content()
    assert by_to["ana@example.org"]["Subject"] == "Pomembna sprememba: politika zasebnosti"
    assert "We keep chat transcripts" in by_to["ana@example.org"].get_body(("plain",)).get_content(), (
        "no Slovenian summary: the English one"
    )
    assert all(m["List-Unsubscribe"] is None for m in sent), "policy notices are transactional"
    assert "https://rights.test/v1/policies/privacy" in by_to["dpo@ctl-b.test"].get_body(("html",)).get_content()


def test_a_minor_version_goes_to_the_optional_list_only_with_one_click_unsubscribe(world):
    world.controller("ctl_a")
    contacts.subscribe("ana@example.org", ["policy_notices"])
    contacts.subscribe("ben@example.org", ["policy_updates"], locale="de")
    version = policies.publish(publication("2026-12a")).version
    assert policies.fan_out(version) == 1
    world.drain()
    (sent,) = mails(world)
    assert sent["To"] == "ben@example.org"
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = sent["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://rights.test/v1/unsubscribe?token=")
    assert link.replace("&", "&amp;") in sent.get_body(("html",)).get_content()


def test_a_bounced_contact_is_skipped_next_time(world):
    contacts.subscribe("ana@example.org", ["policy_notices"])
    contacts.subscribe("ben@example.org", ["policy_notices"])
    detail = json.loads((Path(__file__).resolve().parents[2] / "events" / "ses_events" / "bounce.json").read_text())[
        "detail"
    ]
    detail["bounce"]["bouncedRecipients"][0]["emailAddress"] = "ana@example.org"
    assert suppression.record_ses_event(detail).suppressed == 1
    assert contacts.get(hashing.email_hash("ana@example.org")).suppressed is True
    policies.fan_out(policies.publish(publication(major=True)).version)
    world.drain()
    assert world.sent_to() == ["ben@example.org"]


# ------------------------------------------------------------------ unsubscribe


def _token(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def test_an_unsubscribe_token_works_once_and_takes_the_contact_off_that_list_only(world):
    contact = contacts.subscribe("ben@example.org", ["policy_notices", "policy_updates"])
    token = unsubscribe.issue(contact, "policy_updates")

    claims = unsubscribe.spend(token)
    assert claims.list_name == "policy_updates"
    assert contacts.get(contact).subscriptions == {"policy_notices"}
    assert [m.email for m in contacts.members("policy_updates")] == []
    with pytest.raises(unsubscribe.SpentToken):
        unsubscribe.spend(token)
    with pytest.raises(unsubscribe.SpentToken):
        unsubscribe.check(token)


def test_the_last_list_gone_the_contact_is_forgotten(world):
    contact = contacts.subscribe("ben@example.org", ["policy_updates"])
    unsubscribe.spend(unsubscribe.issue(contact, "policy_updates"))
    assert contacts.get(contact) is None


def test_a_token_for_a_contact_already_gone_still_works_once(world):
    contact = contacts.subscribe("ben@example.org", ["policy_updates"])
    first, second = (unsubscribe.issue(contact, "policy_updates") for _ in range(2))
    unsubscribe.spend(first)
    assert unsubscribe.spend(second).list_name == "policy_updates"
    with pytest.raises(unsubscribe.SpentToken):
        unsubscribe.spend(second)


# ------------------------------------------------------------------ SesEventsFunction


def test_the_ses_events_function_records_its_sample_events(world):
    import importlib.util

    from tests.support.notices_world import ROOT, lambda_context

    spec = importlib.util.spec_from_file_location("_test_ses_events_app", ROOT / "functions" / "ses_events" / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    samples = {
        name: json.loads((ROOT / "events" / "ses_events" / f"{name}.json").read_text())
        for name in ("bounce", "complaint", "transient_bounce")
    }
    assert app.lambda_handler(samples["bounce"], lambda_context()) == {
        "event_type": "Bounce",
        "suppressed": 1,
        "ignored": 0,
        "undelivered": None,
    }
    assert app.lambda_handler(samples["complaint"], lambda_context())["suppressed"] == 1
    assert app.lambda_handler(samples["transient_bounce"], lambda_context()) == {
        "event_type": "Bounce",
        "suppressed": 0,
        "ignored": 1,
        "undelivered": None,
    }
    assert suppression.suppressed_among(["bounced@example.org", "complained@example.org", "full@example.org"]) == {
        "bounced@example.org",
        "complained@example.org",
    }
    item = world.session.client("dynamodb").get_item(
        TableName=world.table,
        Key={"pk": {"S": f"SUPPRESS#{hashing.email_hash('bounced@example.org')}"}, "sk": {"S": "SUPPRESSION"}},
    )["Item"]
    assert "bounced@example.org" not in json.dumps(item), "the suppression list holds no address"
    assert item["reason"] == {"S": "bounce"}
