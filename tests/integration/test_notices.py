"""Breach and policy notices end to end: the CLI against the local runner, the notifier through
moto's SES, bounces, one-click unsubscribe and the public archive, over real HTTP.

The tests run in file order and build on each other (one breach, then policy versions), on a stack
of this module's own: they move its clock by 60 hours and check its whole log for personal data.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.lifecycle import listing_key
from tests.support.flows import wait_for
from tests.support.openapi import check_every_answer, public_openapi

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
TABLE = "rightsdesk-local-RightsTable"
SENDER = "privacy@example.com"  # the template's SenderEmail and OperatorEmail defaults
CONTROLLERS = ("ctl_alpha", "ctl_beta", "ctl_gamma")
# Enough subjects that SES fails in the middle of the run (after a fifth is sent) with many left to
# send; a larger run is a benchmark's business (RIGHTSDESK_NOTICE_SUBJECTS=500 for the old size).
SUBJECTS = int(os.environ.get("RIGHTSDESK_NOTICE_SUBJECTS") or 100)
SEND_DEADLINE = 90  # seconds for the mails through the local notifier, with a fault and retries

PERSONAL: set[str] = set()  # every address used here: none may reach a log line
STATE: dict = {}


# ------------------------------------------------------------------ the stack and its helpers


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.support.stack import start_stack

    running = start_stack(tmp_path_factory.mktemp("notices-stack"))
    yield running
    running.stop()


def rightsdesk(stack, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return stack.cli(*args, check=check)


def as_json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout)


def local_now(stack) -> datetime:
    return datetime.fromisoformat(stack.clock()["now"].replace("Z", "+00:00"))


def outbox(stack, subject: str | None = None) -> list[dict]:
    return [m for m in stack.outbox() if subject is None or subject in m["subject"]]


def sent_count(stack) -> int:
    """Emails moto's SES has sent so far, cheap to poll (moto counts a raw mail once per envelope
    and once per To header, so twice here, and never resets the count)."""
    return int(stack.client("ses").get_send_quota()["SentLast24Hours"]) // 2


def pending_notices(stack, incident_id: str) -> int:
    """Notices still pending, read straight from the table: cheaper to poll than the CLI."""
    found, kwargs = 0, {}
    while True:
        page = stack.client("dynamodb").query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :notice)",
            FilterExpression="#status = :pending",
            ProjectionExpression="pk",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pk": {"S": f"INCIDENT#{incident_id}"},
                ":notice": {"S": "NOTICE#"},
                ":pending": {"S": "pending"},
            },
            **kwargs,
        )
        found += page["Count"]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def seed(stack) -> dict[str, list[str]]:
    """Three email-delivery controllers and SUBJECTS subjects with verified requests (one in 25 at two
    controllers), written straight to the table: these tests are about notices, not intake."""
    dynamodb = stack.client("dynamodb")
    now = local_now(stack)
    items = []
    for n, controller_id in enumerate(CONTROLLERS):
        contact = f"dpo@{controller_id.replace('_', '-')}.test"
        PERSONAL.add(contact)
        items.append(
            ControllerItem(
                ControllerItem.key(controller_id),
                ControllerItem.SK,
                controller_id=controller_id,
                name=f"Shop {n}",
                site_key=controller_id.replace("_", "-"),
                contact_email=contact,
                locale=("en", "de", "sl")[n],
                delivery="email",
                created_at=now,
                gsi1pk="CONTROLLERS",
                gsi1sk=controller_id,
            )
        )
    subjects: dict[str, list[str]] = {cid: [] for cid in CONTROLLERS}
    for n in range(SUBJECTS):
        email = f"subject-{n}@example.org"
        PERSONAL.add(email)
        homes = [CONTROLLERS[n % 3]] + ([CONTROLLERS[(n + 1) % 3]] if n % 25 == 0 else [])
        for controller_id in homes:
            subjects[controller_id].append(email)
            request_id = f"dsr_seed{n:04d}{controller_id[-2:]}"
            created = now - timedelta(days=2, minutes=n)
            items.append(
                RequestItem(
                    RequestItem.key(request_id),
                    RequestItem.SK,
                    request_id=request_id,
                    controller_id=controller_id,
                    site=controller_id,
                    request_type="access",
                    status="forwarded",
                    locale=("en", "de", "sl")[n % 3],
                    email=email,
                    subject_hash=hashlib.sha256(email.encode()).hexdigest(),
                    created_at=created,
                    gsi1pk=f"CTRL#{controller_id}",
                    gsi1sk=listing_key("forwarded", created, request_id),
                )
            )
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item.serialize()}} for item in items[start : start + 25]]
        unprocessed = dynamodb.batch_write_item(RequestItems={TABLE: batch}).get("UnprocessedItems")
        assert not unprocessed
    return subjects


# ------------------------------------------------------------------ breach


def test_a_breach_reaches_every_recipient_exactly_once_despite_a_failing_ses(stack):
    seed(stack)
    stack.clear_outbox()
    ses = stack.client("ses")
    before = sent_count(stack)
    detected = local_now(stack) - timedelta(minutes=30)
    declared = as_json(
        rightsdesk(
            stack,
            "breach",
            "declare",
            "--json",
            "--detected-at",
            detected.isoformat(),
            "--summary",
            "A misconfigured export made chat transcripts readable by another customer.",
            "--categories",
            "chat_history,email",
            "--controllers",
            ",".join(CONTROLLERS),
            "--high-risk",
            "--notify-subjects",
            "--consequences",
            "Phishing messages that quote your chats.",
            "--measures",
            "The export was disabled and access logs were reviewed.",
            "--contact",
            "dpo@rightsdesk.test",
        )
    )
    incident_id = declared["incident"]["incident_id"]
    STATE["incident"] = incident_id
    total = len(CONTROLLERS) + SUBJECTS
    assert sum(declared["counts"]["total"].values()) == total

    # Fault: while the notifier is sending, SES starts refusing (the sender identity disappears),
    # then recovers. The failed messages come back on the retry schedule (5 s) and are sent then.
    wait_for(lambda: sent_count(stack) - before >= SUBJECTS // 5, "the first notices", 60, 0.1)
    ses.delete_identity(Identity=SENDER)
    wait_for(lambda: stack.logs().count('"message":"mail not sent"') >= 10, "a few batches to fail", 30, 0.2)
    ses.verify_email_identity(EmailAddress=SENDER)

    # The table is cheap to poll; the CLI (a Python start-up each time) only once none is pending.
    wait_for(lambda: pending_notices(stack, incident_id) == 0, "every notice to have its outcome", SEND_DEADLINE, 0.5)
    status = as_json(rightsdesk(stack, "breach", "status", incident_id, "--json"))
    assert status["counts"]["controller"] == {"pending": 0, "sent": 3, "failed": 0, "suppressed": 0}
    assert status["counts"]["subject"] == {"pending": 0, "sent": SUBJECTS, "failed": 0, "suppressed": 0}
    recipients = [to for mail in stack.outbox() for to in mail["to"]]
    expected = [f"dpo@{c.replace('_', '-')}.test" for c in CONTROLLERS] + [
        f"subject-{n}@example.org" for n in range(SUBJECTS)
    ]
    assert sorted(recipients) == sorted(expected), "each recipient exactly once"
    assert "mail not sent" in stack.logs(), "the fault really happened"
    assert not any(r["kind"] == "subject" and "@" in r["recipient"] for r in status["recipients"])
    STATE["breach_mails"] = stack.outbox()


def test_the_notices_carry_the_article_33_and_34_facts_in_the_recipients_language(stack):
    mails = STATE["breach_mails"]
    german = next(m for m in mails if m["to"] == ["dpo@ctl-beta.test"])
    assert german["subject"] == "Verletzung des Schutzes personenbezogener Daten bei Shop 1"
    for phrase in (
        "Was ist passiert",
        "Chatverläufe",
        "E-Mail-Adressen",
        "Wahrscheinliche Folgen",
        "Phishing messages that quote your chats.",
        "The export was disabled",
        "dpo@rightsdesk.test",
        STATE["incident"],
    ):
        assert phrase in german["text"] and phrase in german["html"]
    slovenian_subject = next(m for m in mails if m["to"] == ["subject-2@example.org"])
    assert slovenian_subject["subject"] == "Pomembno: varnostni incident je prizadel vaše osebne podatke"
    assert "Shop 2" in slovenian_subject["text"]
    assert not any(h[0].startswith("List-") for h in german["headers"]), "a legal notice has no unsubscribe"


def test_the_deadline_warning_fires_60_hours_after_detection_while_the_authority_is_not_recorded(stack):
    incident_id = STATE["incident"]
    stack.clear_outbox()
    early = stack.run("DeadlineWatchFunction")["result"]["breaches"]
    assert early["open"] == 1 and early["warnings"] == {"due_in_12h": 0, "overdue": 0}
    stack.advance_clock(60 * 3600 - 30 * 60)  # detected 30 minutes before declaring: now detection + 60 h
    report = stack.run("DeadlineWatchFunction")["result"]["breaches"]
    assert report["warnings"]["due_in_12h"] == 1
    warning = stack.wait_for_mail(SENDER)
    assert warning["subject"] == f"Breach {incident_id}: the 72-hour deadline is near"
    assert "supervisory authority has not been recorded" in warning["text"]
    assert stack.run("DeadlineWatchFunction")["result"]["breaches"]["warnings"]["due_in_12h"] == 0, "once"

    at = local_now(stack).isoformat()
    recorded = as_json(
        rightsdesk(
            stack, "breach", "authority-notified", incident_id, "--reference", "IP-2026-117", "--at", at, "--json"
        )
    )
    assert recorded["incident"]["authority_reference"] == "IP-2026-117"
    assert {d["state"] for d in recorded["deadlines"]} == {"met_on_time"}
    again = rightsdesk(stack, "breach", "authority-notified", incident_id, "--reference", "x", "--at", at, check=False)
    assert again.returncode == 1 and "already recorded" in again.stderr
    assert stack.run("DeadlineWatchFunction")["result"]["breaches"]["open"] == 0


def test_a_bounced_subject_is_skipped_and_counted_as_suppressed(stack):
    dynamodb = stack.client("dynamodb")
    now = local_now(stack)
    controller = ControllerItem(
        ControllerItem.key("ctl_delta"),
        ControllerItem.SK,
        controller_id="ctl_delta",
        name="Shop 3",
        site_key="ctl-delta",
        contact_email="dpo@ctl-delta.test",
        delivery="email",
        created_at=now,
        gsi1pk="CONTROLLERS",
        gsi1sk="ctl_delta",
    )
    items = [controller]
    for email in ("gone@example.org", "here@example.org"):
        PERSONAL.add(email)
        items.append(
            RequestItem(
                RequestItem.key(f"dsr_{email[:4]}"),
                RequestItem.SK,
                request_id=f"dsr_{email[:4]}",
                controller_id="ctl_delta",
                site="ctl-delta",
                request_type="erasure",
                status="delivered",
                email=email,
                created_at=now,
                subject_hash=hashlib.sha256(email.encode()).hexdigest(),
                gsi1pk="CTRL#ctl_delta",
                gsi1sk=listing_key("delivered", now, f"dsr_{email[:4]}"),
            )
        )
    for item in items:
        dynamodb.put_item(TableName=TABLE, Item=item.serialize())
    bounce = json.loads((REPO / "events" / "ses_events" / "bounce.json").read_text())
    bounce["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] = "gone@example.org"
    assert stack.run("SesEventsFunction", bounce)["result"] == {
        "event_type": "Bounce",
        "suppressed": 1,
        "ignored": 0,
        "undelivered": None,
    }

    stack.clear_outbox()
    declared = as_json(
        rightsdesk(
            stack,
            "breach",
            "declare",
            "--json",
            "--detected-at",
            "now",
            "--summary",
            "Test.",
            "--categories",
            "chat_history",
            "--controllers",
            "ctl_delta",
            "--high-risk",
            "--notify-subjects",
        )
    )
    incident_id = declared["incident"]["incident_id"]
    wait_for(
        lambda: pending_notices(stack, incident_id) == 0, "the small breach's notices to have their outcome", 30, 0.5
    )
    status = as_json(rightsdesk(stack, "breach", "status", incident_id, "--json"))
    assert status["counts"]["subject"] == {"pending": 0, "sent": 1, "failed": 0, "suppressed": 1}
    assert sorted(to for m in stack.outbox() for to in m["to"]) == ["dpo@ctl-delta.test", "here@example.org"]
    assert "MailSuppressed" in stack.logs()


# ------------------------------------------------------------------ policies


def contacts_csv(tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    lists = {}
    for n in range(40):
        email = f"contact-{n}@example.net"
        lists[email] = [["policy_notices"], ["policy_updates"], ["policy_notices", "policy_updates"]][n % 3]
    lists["dpo@ctl-alpha.test"] = ["policy_updates"]  # a controller's contact who also subscribed
    PERSONAL.update(lists)
    path = tmp_path / "contacts.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "locale", "lists"])
        for n, (email, names) in enumerate(lists.items()):
            writer.writerow([email, ("en", "de", "sl")[n % 3], ";".join(names)])
    return path, lists


def publish(stack, tmp_path: Path, version: str, *, major: bool, summary: str, **extra: str) -> dict:
    summary_file = tmp_path / f"{version}.md"
    summary_file.write_text(summary)
    text_file = tmp_path / f"{version}.html"
    text_file.write_text(f"<h1>Privacy policy {version}</h1>")
    args = [
        "policy",
        "publish",
        "--json",
        "--doc",
        "privacy",
        "--version",
        version,
        "--url",
        f"https://example.com/privacy/{version}",
        "--summary-file",
        str(summary_file),
        "--text-file",
        str(text_file),
    ]
    for flag, value in extra.items():
        args += [f"--{flag.replace('_', '-')}", value]
    return as_json(rightsdesk(stack, *args, *(["--major"] if major else [])))


def policy_mails(stack, version: str) -> list[dict]:
    return [m for m in stack.outbox() if version in m["text"]]


def test_a_major_policy_version_reaches_every_concerned_party_once(stack, tmp_path):
    path, lists = contacts_csv(tmp_path)
    imported = as_json(rightsdesk(stack, "contacts", "import", str(path), "--json"))
    assert imported == {"added": 41, "rejected_lines": []}
    stack.clear_outbox()
    summary_de = tmp_path / "de.md"
    summary_de.write_text("Chatverläufe werden nur noch 30 Tage gespeichert.")
    published = publish(
        stack,
        tmp_path,
        "2026-12",
        major=True,
        summary="Chat transcripts are kept 30 days only.",
        summary_file_de=str(summary_de),
    )
    controllers = [
        "privacy@demo.localhost",
        "dpo@ctl-alpha.test",
        "dpo@ctl-beta.test",
        "dpo@ctl-gamma.test",
        "dpo@ctl-delta.test",
    ]
    expected = sorted(set(controllers) | set(lists))
    assert published["emails_queued"] == len(expected)
    wait_for(lambda: len(policy_mails(stack, "2026-12")) >= len(expected), "the policy notices", 30, 0.5)
    wait_for(lambda: stack.queue_empty("MailQueue"), "the mail queue to drain", 30, 0.5)  # then a duplicate would show
    mails = policy_mails(stack, "2026-12")
    assert sorted(to for m in mails for to in m["to"]) == expected
    german = next(m for m in mails if m["to"] == ["contact-1@example.net"])
    assert "Chatverläufe werden nur noch 30 Tage gespeichert." in german["text"]
    assert not any(h[0] == "List-Unsubscribe" for m in mails for h in m["headers"])
    again = publish(
        stack,
        tmp_path,
        "2026-12",
        major=True,
        summary="Chat transcripts are kept 30 days only.",
        summary_file_de=str(summary_de),
        effective_at=published["effective_at"],
    )
    assert again["created"] is False
    wait_for(lambda: stack.queue_empty("MailQueue"), "the mail queue to drain", 30, 0.5)  # then a duplicate would show
    assert len(policy_mails(stack, "2026-12")) == len(expected), "publishing again sends nobody a second mail"
    STATE["updates"] = sorted(email for email, names in lists.items() if "policy_updates" in names)


def test_a_bounced_contact_is_skipped_by_the_next_notice(stack, tmp_path):
    complaint = json.loads((REPO / "events" / "ses_events" / "complaint.json").read_text())
    complaint["detail"]["complaint"]["complainedRecipients"][0]["emailAddress"] = "contact-0@example.net"
    assert stack.run("SesEventsFunction", complaint)["result"]["suppressed"] == 1
    stack.clear_outbox()
    published = publish(stack, tmp_path, "2027-01", major=True, summary="Call recordings are no longer kept.")
    wait_for(lambda: len(policy_mails(stack, "2027-01")) >= published["emails_queued"] - 1, "the notices", 30, 0.5)
    wait_for(lambda: stack.queue_empty("MailQueue"), "the mail queue to drain", 30, 0.5)  # then a duplicate would show
    recipients = [to for m in policy_mails(stack, "2027-01") for to in m["to"]]
    assert "contact-0@example.net" not in recipients
    assert len(recipients) == published["emails_queued"] - 1


def test_an_unsubscribe_link_works_once_without_login_and_cannot_be_forged(stack, tmp_path):
    stack.clear_outbox()
    publish(stack, tmp_path, "2027-01a", major=False, summary="Typos fixed.")
    updates = STATE["updates"]
    mails = wait_for(
        lambda: len(policy_mails(stack, "2027-01a")) >= len(updates) and policy_mails(stack, "2027-01a"),
        "the policy updates",
        30,
        0.5,
    )
    assert sorted(to for m in mails for to in m["to"]) == updates, "minor versions go to the optional list only"
    mail = next(m for m in mails if m["to"] == [updates[0]])
    headers = dict(mail["headers"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = headers["List-Unsubscribe"].strip("<>")
    assert link in mail["text"]
    token = parse_qs(urlsplit(link).query)["token"][0]
    STATE["token"] = token
    browser = requests.Session()

    page = browser.get(link, headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'method="post"' in page.text, "a GET only asks"
    assert browser.get(link).status_code == 200, "fetching twice (a mail scanner) changes nothing"

    payload, mac = token.split(".")
    other = parse_qs(
        urlsplit(
            dict(next(m for m in mails if m["to"] == [updates[1]])["headers"])["List-Unsubscribe"].strip("<>")
        ).query
    )["token"][0]
    for forged in (f"{payload}.{'0' * len(mac)}", f"{other.split('.')[0]}.{mac}", payload, "nonsense"):
        refused = requests.post(
            f"{stack.base_url}/v1/unsubscribe",
            params={"token": forged},
            files={"List-Unsubscribe": (None, "One-Click")},
        )
        assert refused.status_code == 400, forged

    # RFC 8058: the mail client POSTs multipart/form-data to the header's URL, no cookie, no login.
    done = requests.post(link, files={"List-Unsubscribe": (None, "One-Click")})
    assert done.status_code == 200 and done.json() == {"unsubscribed": True, "list": "policy_updates"}
    used = requests.post(link, data={"List-Unsubscribe": "One-Click"})
    assert used.status_code == 410
    assert browser.get(link, headers={"Accept": "text/html"}).status_code == 410

    stack.clear_outbox()
    publish(stack, tmp_path, "2027-01b", major=False, summary="More typos fixed.")
    wait_for(lambda: len(policy_mails(stack, "2027-01b")) >= len(updates) - 1, "the next update", 30, 0.5)
    wait_for(lambda: stack.queue_empty("MailQueue"), "the mail queue to drain", 30, 0.5)  # then a duplicate would show
    assert sorted(to for m in policy_mails(stack, "2027-01b") for to in m["to"]) == updates[1:]


def test_the_archive_serves_every_version_and_the_current_one(stack):
    api = requests.Session()
    check_every_answer(api, stack.base_url, public_openapi())  # the answers are what the document says
    archive = api.get(f"{stack.base_url}/v1/policies/privacy")
    assert archive.status_code == 200
    body = archive.json()
    assert [v["version"] for v in body["versions"]] == ["2026-12", "2027-01", "2027-01a", "2027-01b"]
    assert body["current"]["version"] == "2027-01b"
    old = api.get(f"{stack.base_url}/v1/policies/privacy/versions/2026-12").json()
    assert old["summaries"] == {
        "en": "Chat transcripts are kept 30 days only.",
        "de": "Chatverläufe werden nur noch 30 Tage gespeichert.",
    }
    assert old["major"] is True and old["url"] == "https://example.com/privacy/2026-12"
    assert api.get(f"{stack.base_url}/v1/policies/privacy/versions/1999").status_code == 404
    listed = as_json(rightsdesk(stack, "policy", "list", "--json"))["versions"]
    assert [(v["version"], v["current"]) for v in listed if v["doc"] == "privacy"][-1] == ("2027-01b", True)


def test_no_personal_data_reached_any_log_line(stack):
    logs = stack.logs()
    assert "mail done" in logs, "the notifier's log lines are captured (the check below means something)"
    leaked = sorted(value for value in PERSONAL if value in logs)
    assert not leaked, f"addresses in logs: {leaked[:5]}"
    assert STATE["token"] not in logs and STATE["token"].split(".")[1] not in logs
    assert not re.search(r"token=[A-Za-z0-9_-]{20,}", logs), "no unsubscribe link in a log line"
