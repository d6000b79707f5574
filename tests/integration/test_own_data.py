"""The operator's own data end to end: a site of the operator's own (delivery internal) registered
with the CLI, every right through the local runner over real HTTP (the form API, the dispatcher,
OwnRequestsFunction on the table's stream, the notifier through moto's SES), the operator's CLI,
and the annual report over a seeded year.

The tests run in file order and share their people; the stack is this module's own, and its log is
checked whole for personal data at the end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import unicodedata
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
import requests

from rightsdesk.store.items.requests import RequestItem
from tests.support.flows import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
TABLE = "rightsdesk-local-RightsTable"
SITE = "platform"
AUTHORITY = "Information Commissioner of the Republic of Slovenia"  # the template's default
SCHEMA = REPO / "layers" / "core" / "rightsdesk" / "own_data" / "schemas" / "export.schema.json"
SEEDED_YEAR = 2025

PERSONAL: set[str] = set()  # every address and name used here: none may reach a log line
STATE: dict = {}


# ------------------------------------------------------------------ the stack and its helpers


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.support.stack import start_stack

    running = start_stack(tmp_path_factory.mktemp("own-data-stack"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def people(stack, tmp_path_factory) -> dict[str, str]:
    """The operator's own site, registered with the CLI, and its mailing-list contacts."""
    rightsdesk(
        stack,
        "controllers",
        "add",
        "--name",
        "Example Platform",
        "--site",
        SITE,
        "--contact",
        "privacy@platform.test",
        "--delivery",
        "internal",
        "--id",
        "ctl_platform",
    )
    found = {role: person(role) for role in ("reader", "other", "withdrawer", "restricter", "eraser", "fixer")}
    csv = tmp_path_factory.mktemp("contacts") / "contacts.csv"
    lists = {"other": "newsletter;marketing", "fixer": "policy_notices"}
    csv.write_text(
        "email,locale,lists\n"
        + "".join(f"{email},en,{lists.get(role, 'newsletter')}\n" for role, email in found.items())
    )
    rightsdesk(stack, "contacts", "import", str(csv))
    return found


def person(role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    PERSONAL.add(email)
    return email


def rightsdesk(stack, *args: str) -> subprocess.CompletedProcess:
    return stack.cli(*args)


def cli_json(stack, *args: str) -> dict:
    return json.loads(rightsdesk(stack, "--json", *args).stdout)


def mails_to(stack, email: str, subject: str | None = None) -> list[dict]:
    return [m for m in stack.outbox() if email in m["to"] and (subject is None or subject in m["subject"])]


def ask(stack, email: str, kind: str, **fields) -> tuple[str, dict]:
    """Submit and verify a request for the operator's own site; (request id, the verify answer)."""
    submitted = stack.post(
        "/v1/requests",
        json={"site": SITE, "type": kind, "email": email, **fields},
        headers={"Accept": "application/json"},
    )
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["request_id"]
    mail = wait_for(
        lambda: next((m for m in mails_to(stack, email) if f"/verify/{request_id}" in m["text"]), None),
        "the verification code",
    )
    code = re.search(r"\b(\d{6})\b", mail["text"]).group(1)
    verified = stack.post(
        f"/v1/requests/{request_id}/verify", json={"code": code}, headers={"Accept": "application/json"}
    )
    assert verified.status_code == 200, verified.text
    return request_id, verified.json()


def status(stack, request_id: str, token: str) -> dict:
    answer = stack.get(f"/v1/requests/{request_id}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_status(stack, request_id: str, token: str, wanted: str) -> dict:
    return wait_for(
        lambda: (view := status(stack, request_id, token))["status"] == wanted and view, f"{request_id} to be {wanted}"
    )


def email_hash(stack, email: str) -> str:
    """The keyed hash rightsdesk files the address under (rightsdesk.platform.hashing), with the local run's key:
    RIGHTSDESK_HASH_KEY when this session has one (tests/unit/conftest.py sets it, and the stack and the
    CLI inherit it), else the run's secret."""
    key = (
        os.environ.get("RIGHTSDESK_HASH_KEY")
        or stack.client("secretsmanager").get_secret_value(SecretId="rightsdesk-local-HashKeySecret")["SecretString"]
    )
    normal = unicodedata.normalize("NFKC", email).strip().casefold()
    return hmac.new(key.encode(), f"email\x00{normal}".encode(), hashlib.sha256).hexdigest()


def scan(stack) -> list[dict]:
    items, kwargs = [], {}
    while True:
        page = stack.client("dynamodb").scan(TableName=TABLE, **kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def export(stack, request_id: str, bearer: str | None, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return stack.get(f"/v1/requests/{request_id}/export", params=params, headers=headers)


# ------------------------------------------------------------------ access and portability


def test_an_access_request_is_answered_with_an_export_of_the_subjects_data_alone(stack, people):
    request_id, verified = ask(stack, people["reader"], "access", name="Rea Der")
    PERSONAL.add("Rea Der")
    token = verified["status_token"]
    wait_status(stack, request_id, token, "completed")

    answer = export(stack, request_id, token)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    document = answer.json()
    schema = stack.get("/v1/schemas/export.json").json()
    assert schema == json.loads(SCHEMA.read_text()), "the schema the API serves is the one shipped"
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["contact"]["email"] == people["reader"]
    assert [r["request_id"] for r in document["requests"]] == [request_id]
    assert document["requests"][0]["personal"]["name"] == "Rea Der"
    assert {c["purpose"]: c["state"] for c in document["consents"]} == {"newsletter": "granted"}
    others = [email for role, email in people.items() if role != "reader"]
    assert not any(email in answer.text for email in others), "nobody else's data"

    assert export(stack, request_id, None).status_code == 401
    assert export(stack, request_id, "rst_" + "x" * 43).status_code == 401
    page = export(stack, request_id, None, format="html", token=token)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert people["reader"] in page.text and "default-src 'none'" in page.headers["Content-Security-Policy"]
    status_page = stack.get(f"/status/{request_id}", params={"token": token}, headers={"Accept": "text/html"})
    assert f"/v1/requests/{request_id}/export?format=html" in status_page.text, "the status page links to it"
    answered = wait_for(lambda: mails_to(stack, people["reader"], "answered"), "the answer")
    assert "available until" in answered[-1]["text"]


# ------------------------------------------------------------------ consent, restriction, newsletters


def test_a_withdrawn_consent_and_a_restriction_stop_the_next_newsletter(stack, people, tmp_path):
    withdrawal, verified = ask(stack, people["withdrawer"], "consent_withdrawal", purposes=["newsletter"])
    wait_status(stack, withdrawal, verified["status_token"], "completed")
    restriction, verified = ask(stack, people["restricter"], "restriction")
    wait_status(stack, restriction, verified["status_token"], "completed")
    access, verified = ask(stack, people["restricter"], "access")
    wait_status(stack, access, verified["status_token"], "completed")
    contact = export(stack, access, verified["status_token"]).json()["contact"]
    assert contact["restricted_since"], "the restriction is visible in the export"

    body = tmp_path / "issue.txt"
    body.write_text("Hello from the platform.\n\nWhat is new this month.")
    sent = cli_json(
        stack, "newsletter", "send", "--issue", "n1", "--subject", "Platform news 1", "--body-file", str(body)
    )
    # the withdrawer left the list with the withdrawal; the restricter is on it but skipped
    assert (sent["queued"], sent["skipped"]) == (3, 1)
    expected = {people[r] for r in ("reader", "other", "eraser")}
    got = wait_for(
        lambda: (
            (found := {m["to"][0] for m in stack.outbox() if m["subject"] == "Platform news 1"}) >= expected and found
        ),
        "the newsletter",
    )
    assert got == expected, "neither the withdrawer nor the restricter gets it"

    ledger = cli_json(stack, "consents", "show", "--email", people["withdrawer"])["consents"]
    assert [(c["purpose"], c["state"], c["withdrawn_source"]) for c in ledger] == [
        ("newsletter", "withdrawn", f"request:{withdrawal}")
    ]

    rightsdesk(stack, "contacts", "lift-restriction", "--email", people["restricter"])
    sent = cli_json(
        stack, "newsletter", "send", "--issue", "n2", "--subject", "Platform news 2", "--body-file", str(body)
    )
    assert (sent["queued"], sent["skipped"]) == (4, 0)
    wait_for(lambda: mails_to(stack, people["restricter"], "Platform news 2"), "the newsletter after the lift")
    assert not mails_to(stack, people["withdrawer"], "Platform news")


# ------------------------------------------------------------------ erasure


def test_an_erasure_leaves_the_address_nowhere_but_as_a_keyed_hash(stack, people):
    eraser = people["eraser"]
    access, verified = ask(stack, eraser, "access", name="Era Ser", details="my chats of May")
    PERSONAL.update({"Era Ser", "my chats of May"})
    wait_status(stack, access, verified["status_token"], "completed")
    erasure, verified = ask(stack, eraser, "erasure", relationship="guardian")
    due = datetime.fromisoformat(verified["due_at"].replace("Z", "+00:00"))
    now = datetime.fromisoformat(stack.clock()["now"].replace("Z", "+00:00"))
    assert timedelta(hours=71) < due - now <= timedelta(hours=72), "a guardian's erasure is due in 72 hours"
    wait_status(stack, erasure, verified["status_token"], "completed")

    subject_hash = email_hash(stack, eraser)
    # the stream handler audits the consent record's deletion and both purges: wait for them
    wait_for(
        lambda: (
            sum(
                1
                for item in scan(stack)
                if item["sk"]["S"].startswith("AUDIT#")
                and item.get("cause", {}).get("S") == "erasure"
                and item["pk"]["S"] in (f"CONTACT#{subject_hash}", f"REQ#{access}", f"REQ#{erasure}")
            )
            == 7
        ),
        "the erasure's audit events",
    )  # contact, list, consent, 2 pointers; 2 purges
    everything = json.dumps(scan(stack))
    assert eraser not in everything and "Era Ser" not in everything and "my chats of May" not in everything
    assert f"SUPPRESS#{subject_hash}" in everything, "kept: the keyed hash, so it is never emailed again"
    assert status(stack, erasure, verified["status_token"])["status"] == "completed", "the skeleton stays"
    assert mails_to(stack, eraser, "answered"), "told before the address went"


# ------------------------------------------------------------------ the operator queue


def test_a_rectification_waits_for_the_operator_and_is_applied_on_approval(stack, people):
    fixer = people["fixer"]
    PERSONAL.add("Fiona Fixed")
    request_id, verified = ask(stack, fixer, "rectification", name="Fiona Fixed", details="my name is misspelt")
    wait_for(lambda: mails_to(stack, fixer, "correction"), "the acknowledgement")
    queue = cli_json(stack, "requests", "list", "--route", "internal")["requests"]
    assert [(r["request_id"], r["status"]) for r in queue if r["request_id"] == request_id] == [
        (request_id, "in_progress")
    ]
    assert request_id not in {
        r["request_id"] for r in cli_json(stack, "requests", "list", "--route", "internal", "--overdue")["requests"]
    }

    resolved = cli_json(stack, "requests", "resolve", request_id, "--approve", "--note", "Corrected everywhere.")

    assert resolved["request"]["status"] == "completed"
    contact = stack.client("dynamodb").get_item(
        TableName=TABLE, Key={"pk": {"S": f"CONTACT#{email_hash(stack, fixer)}"}, "sk": {"S": "CONTACT"}}
    )["Item"]
    assert contact["name"]["S"] == "Fiona Fixed"
    answer = wait_for(lambda: mails_to(stack, fixer, "answered"), "the answer")[-1]
    assert "We have corrected your data" in answer["text"] and "Corrected everywhere." in answer["text"]


def test_a_complaints_confirmation_names_the_supervisory_authority(stack, people):
    complainer = person("complainer")
    request_id, verified = ask(stack, complainer, "complaint", details="You kept emailing me.")
    PERSONAL.add("You kept emailing me.")
    mail = wait_for(lambda: mails_to(stack, complainer, "complaint"), "the confirmation")[-1]
    assert AUTHORITY in mail["text"] and "https://www.ip-rs.si/" in mail["text"]
    assert status(stack, request_id, verified["status_token"])["status"] == "in_progress", "in the operator queue"
    form = stack.get("/", params={"site": SITE, "lang": "en"}, headers={"Accept": "text/html"})
    assert AUTHORITY in form.text, "the form's complaint note names it too"


# ------------------------------------------------------------------ the annual report


def seed_year(stack) -> list[dict]:
    """A year of requests written straight to the table, with the outcomes the report must count."""
    rows = [  # (type, controller, status, verified day of year, days to close or None, due days)
        ("access", "ctl_platform", "completed", 10, 2, 30),
        ("access", "ctl_platform", "completed", 40, 5, 30),
        ("portability", "ctl_platform", "completed", 70, 9, 30),
        ("erasure", "ctl_platform", "completed", 100, 1, 3),
        ("rectification", "ctl_platform", "rejected", 130, 45, 30),  # late
        ("complaint", "ctl_platform", "completed", 160, 31, 30),  # late
        ("access", "ctl_demo", "completed", 190, 12, 30),
        ("erasure", "ctl_demo", "delivery_failed", 220, None, 30),
        ("objection", "ctl_demo", "cancelled", 250, 2, 30),
        ("access", "ctl_demo", "delivered", 280, None, 30),
    ]
    items = []
    for n, (kind, controller_id, state, day, close_days, due_days) in enumerate(rows):
        verified = datetime(SEEDED_YEAR, 1, 1, 9, tzinfo=timezone.utc) + timedelta(days=day)
        created = verified - timedelta(minutes=10)
        closed = verified + timedelta(days=close_days) if close_days is not None else None
        request_id = f"dsr_seed{SEEDED_YEAR}{n:04d}"
        items.append(
            RequestItem(
                RequestItem.key(request_id),
                RequestItem.SK,
                request_id=request_id,
                controller_id=controller_id,
                site=controller_id,
                request_type=kind,
                status=state,
                created_at=created,
                verified_at=verified,
                due_at=verified + timedelta(days=due_days),
                updated_at=closed or verified,
                gsi1pk=f"CTRL#{controller_id}",
                gsi1sk=f"{state}#{created.strftime('%Y-%m-%dT%H:%M:%SZ')}#{request_id}",
            ).serialize()
        )
    dynamodb = stack.client("dynamodb")
    for item in items:
        dynamodb.put_item(TableName=TABLE, Item=item)
    return [dict(zip(("type", "controller", "status", "day", "close", "due"), row)) for row in rows]


def test_the_annual_report_matches_a_seeded_year(stack, people, tmp_path):
    seeded = seed_year(stack)
    out = tmp_path / "report.html"

    figures = cli_json(stack, "report", "annual", "--year", str(SEEDED_YEAR), "--out", str(out))

    requests_ = figures["requests"]
    assert requests_["total"] == len(seeded)
    assert requests_["by_type"] == {
        "access": 4,
        "complaint": 1,
        "erasure": 2,
        "objection": 1,
        "portability": 1,
        "rectification": 1,
    }
    assert requests_["by_route"] == {"internal": 6, "webhook": 4}  # the demo controller takes webhooks
    assert requests_["by_outcome"] == {"completed": 6, "rejected": 1, "cancelled": 1, "open": 2}
    assert (requests_["answered"], requests_["answered_on_time"], requests_["on_time_share"]) == (7, 5, 0.714)
    # completed after 2, 5, 9, 1, 31, 12 days: sorted 1 2 5 9 12 31
    assert requests_["days_to_complete"] == {"count": 6, "median": 7.0, "p95": 31.0}
    assert requests_["delivery_failures"] == {"total": 1, "by_route": {"webhook": 1}}
    html = out.read_text()
    assert "self-assessment 2025" in html and html.count("<svg") >= 4
    assert not re.search(r"<(script|link|img)\b", html)


def test_no_personal_data_reached_any_log_line(stack):
    logs = stack.logs()
    assert "own request handled" in logs, "the handler's log lines are there to be checked"
    leaked = sorted(value for value in PERSONAL if value in logs)
    assert not leaked, f"personal data in the local run's log: {leaked}"


def test_an_extension_to_a_date_from_the_cli_runs_through_that_day(stack, people):
    extended = person("extended")
    request_id, verified = ask(stack, extended, "complaint", details="Please look into this.")
    PERSONAL.add("Please look into this.")
    wait_for(
        lambda: status(stack, request_id, verified["status_token"])["status"] == "in_progress", "the operator queue"
    )
    due = datetime.fromisoformat(verified["due_at"].replace("Z", "+00:00"))
    day = (due + timedelta(days=10)).date().isoformat()

    resolved = cli_json(
        stack, "requests", "resolve", request_id, "--extend-to", day, "--reason", "We need our archive."
    )

    assert resolved["request"]["due_at"].startswith(f"{day}T23:59:59"), resolved["request"]["due_at"]
