"""`rightsdesk breach|policy|contacts` in-process against moto: what the operator sees and types."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from rightsdesk.kernel import clock
from rightsdesk_cli.main import app
from tests.support.aws import fast_pynamodb_sessions
from tests.support.notices_world import World, aws_environment

SUBJECT = "someone@example.org"


@pytest.fixture(scope="module")
def world():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        aws_environment(patch)
        fast_pynamodb_sessions(patch)
        patch.setenv("RIGHTSDESK_HASH_KEY", "cli-test-key")
        patch.delenv("RIGHTSDESK_STACK", raising=False)
        world = World(patch, prefix="rightsdesk-cli")
        world.controller("ctl_a", locale="de")
        world.request("ctl_a", SUBJECT)
        yield world


def run(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))


def run_json(*args: str) -> dict:
    result = run("--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_declare_then_status_and_the_authority_record(world):
    declared = run_json(
        "breach",
        "declare",
        "--detected-at",
        "now",
        "--summary",
        "Leak.",
        "--categories",
        "chat_history",
        "--controllers",
        "ctl_a",
        "--high-risk",
        "--notify-subjects",
    )
    incident_id = declared["incident"]["incident_id"]
    assert declared["counts"]["total"]["pending"] == 2
    world.drain()

    shown = run("breach", "status", incident_id)
    assert shown.exit_code == 0, shown.output
    assert "72-hour deadlines" in shown.stdout and "in 2d 23h" in shown.stdout
    assert "authority" in shown.stdout and "not recorded" in shown.stdout
    assert SUBJECT not in shown.stdout and SUBJECT not in run("breach", "status", incident_id, "--all").stdout
    status = run_json("breach", "status", incident_id)
    assert status["counts"]["total"] == {"pending": 0, "sent": 2, "failed": 0, "suppressed": 0}
    assert {r["kind"] for r in status["recipients"]} == {"controller", "subject"}

    recorded = run_json("breach", "authority-notified", incident_id, "--reference", "IP-1", "--at", "now")
    assert recorded["incident"]["authority_reference"] == "IP-1"
    listed = run_json("breach", "list")["incidents"]
    assert [i["incident_id"] for i in listed if i["authority_recorded"]] == [incident_id]
    assert run_json("breach", "resend", incident_id) == {"incident_id": incident_id, "queued": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--controllers", "ctl_a", "--all-controllers"), "--controllers"),
        (("--controllers", "ctl_a", "--notify-subjects"), "this breach cannot be declared"),
        (("--controllers", "ctl_nobody"), "no controller ctl_nobody"),
    ],
)
def test_declaring_refuses_what_it_cannot_do(world, args, message):
    result = run("breach", "declare", "--detected-at", "now", "--summary", "s", "--categories", "email", *args)
    assert result.exit_code != 0
    assert message in result.output


def test_a_detection_time_in_the_future_or_unreadable_is_refused(world):
    later = clock.isoformat(clock.now()).replace("20", "21", 1)
    for moment in (later, "yesterday"):
        result = run(
            "breach",
            "declare",
            "--detected-at",
            moment,
            "--summary",
            "s",
            "--categories",
            "email",
            "--controllers",
            "ctl_a",
        )
        assert result.exit_code == 1, result.output


def test_contacts_publish_and_list(world, tmp_path):
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("email,locale,lists\nana@example.org,sl,policy_updates\nnot-an-address,en,policy_updates\n")
    imported = run("--json", "contacts", "import", str(csv_file))
    assert imported.exit_code == 1 and json.loads(imported.stdout) == {"added": 1, "rejected_lines": [3]}
    assert run_json("contacts", "add", "ben@example.org", "--list", "policy_notices") == {
        "added": 1,
        "lists": ["policy_notices"],
    }

    summary = tmp_path / "en.md"
    summary.write_text("Shorter retention.")
    text = tmp_path / "terms.html"
    text.write_bytes("<h1>Terms</h1>\n<p>Kürzere Aufbewahrung.</p>\n".encode())
    published = run_json(
        "policy",
        "publish",
        "--doc",
        "terms",
        "--version",
        "2026-12",
        "--url",
        "https://example.com/terms",
        "--summary-file",
        str(summary),
        "--text-file",
        str(text),
        "--major",
    )
    # recorded at publish time, and anyone with the file can recompute it
    assert published["text_sha256"] == hashlib.sha256(text.read_bytes()).hexdigest()
    same = run("--json", "policy", "verify", "--doc", "terms", "--version", "2026-12", str(text))
    assert same.exit_code == 0 and json.loads(same.stdout)["matches"] is True
    altered = tmp_path / "altered.html"
    altered.write_bytes(text.read_bytes().replace(b"K\xc3\xbcrzere", b"L\xc3\xa4ngere"))
    differs = run("--json", "policy", "verify", "--doc", "terms", "--version", "2026-12", str(altered))
    assert differs.exit_code == 1 and json.loads(differs.stdout)["matches"] is False
    assert published["created"] and published["emails_queued"] == 3  # ctl_a's contact, ana, ben
    again = run_json(
        "policy",
        "publish",
        "--doc",
        "terms",
        "--version",
        "2026-12",
        "--url",
        "https://example.com/terms",
        "--summary-file",
        str(summary),
        "--text-file",
        str(text),
        "--major",
        "--effective-at",
        published["effective_at"],
    )
    assert again["created"] is False
    shown = run("policy", "list")
    assert "terms" in shown.stdout and "2026-12" in shown.stdout
    assert run_json("policy", "list", "--doc", "terms")["versions"][0]["current"] is True
    world.drain()


def test_a_late_breach_reads_met_late_in_the_table_and_in_json_never_done(world):
    four_days_ago = clock.isoformat(clock.now() - timedelta(days=4))
    refused = run(
        "breach",
        "declare",
        "--detected-at",
        four_days_ago,
        "--summary",
        "Leak.",
        "--categories",
        "chat_history",
        "--controllers",
        "ctl_a",
    )
    assert refused.exit_code == 1 and "GDPR Art. 33(1)" in " ".join(refused.output.split())
    declared = run_json(
        "breach",
        "declare",
        "--detected-at",
        four_days_ago,
        "--summary",
        "Leak.",
        "--categories",
        "chat_history",
        "--controllers",
        "ctl_a",
        "--delay-reason",
        "Scope confirmed on day four.",
    )
    incident_id = declared["incident"]["incident_id"]
    world.drain()
    shown = run("breach", "status", incident_id)
    assert "met late by 1d" in shown.stdout and "Scope confirmed on day four." in shown.stdout
    assert "yes" not in shown.stdout.split("72-hour deadlines")[1].split("notices")[0], "no 'done yes'"
    rows = {d["deadline"]: d for d in run_json("breach", "status", incident_id)["deadlines"]}
    assert rows["controllers"]["state"] == "met_late" and rows["controllers"]["late_by_seconds"] >= 86400
    assert rows["authority"]["state"] == "missed" and rows["authority"]["met_at"] is None
    late = run("breach", "authority-notified", incident_id, "--reference", "IP-2", "--at", "now")
    assert late.exit_code == 1 and "GDPR Art. 33(1)" in " ".join(late.output.split())
    explained = run_json("breach", "explain-delay", incident_id, "--deadline", "authority", "--reason", "Waited.")
    assert {d["deadline"]: d["delay_reason"] for d in explained["deadlines"]}["authority"] == "Waited."


def test_consents_withdraw_leaves_the_list_that_purpose_feeds(world):
    assert run_json("contacts", "add", "cleo@example.org", "--list", "newsletter", "--list", "policy_updates") == {
        "added": 1,
        "lists": ["newsletter", "policy_updates"],
    }
    assert run_json(
        "consents", "withdraw", "--email", "cleo@example.org", "--purpose", "newsletter", "--source", "ticket-4711"
    ) == {"withdrawn": ["newsletter"], "lists_left": ["newsletter"]}
    ledger = {
        c["purpose"]: (c["state"], c["withdrawn_source"])
        for c in run_json("consents", "show", "--email", "cleo@example.org")["consents"]
    }
    assert ledger["newsletter"] == ("withdrawn", "ticket-4711")
    assert ledger["policy_notices"] == ("granted", None), "the other list's consent stands"
