"""Who did it: every operator command that changes state or reveals personal data names the
operator on the audit trail (account, role name, keyed hash of the caller ARN), with one STS call
per run, and never stores the session name (single sign-on puts the person's email there)."""

from __future__ import annotations

import csv
import json
from datetime import timedelta

import botocore.client
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from typer.testing import CliRunner

from rightsdesk.audience import contacts
from rightsdesk.intake import submissions
from rightsdesk.intake.submissions import Submission
from rightsdesk.kernel import clock
from rightsdesk.kernel.status import Status
from rightsdesk.platform import aws_clients, config, hashing, operator_identity
from rightsdesk.routing import controller_lookup, registry
from rightsdesk.store import queries
from rightsdesk.store.items.table import bind_table
from rightsdesk.store.lifecycle import transition
from rightsdesk_cli.main import app
from tests.support.aws import moto_cloud, verification_code

REGION = "eu-central-1"
ACCOUNT = "123456789012"
ROLE = "RightsdeskOperator"
SESSION = "jane.doe@example.com"  # what single sign-on puts in the session name
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{SESSION}"
SUBJECT = "ada@example.org"
WHO = {"account": ACCOUNT, "principal": f"role/{ROLE}", "arn_hash": hashing.keyed_hash("operator_arn", CALLER)}


class World:
    def __init__(self, cloud):
        self.session, self.table, self.queues = cloud.session, cloud.tables["RightsTable"], cloud.queues
        self.dynamodb = self.session.client("dynamodb")

    def controller(self, tag: str, delivery: str = "email") -> str:
        controller_id = hashing.new_id("ctl")
        site = f"{tag}-{controller_id[4:14]}"
        registry.register(
            name=tag, site_key=site, contact_email=f"dpo@{site}.test", delivery=delivery, controller_id=controller_id
        )
        return controller_id

    def request(self, controller_id: str, *, verified: bool = True) -> str:
        site = controller_lookup.require_controller(controller_id).site_key
        request_id = submissions.submit(
            Submission(site=site, type="access", email=SUBJECT, name="Ada", details="all of it"), locale="en"
        ).request_id
        if verified:
            submissions.verify(request_id, verification_code(self.session, self.queues["MailQueue"], request_id))
        return request_id

    def items(self) -> list[dict]:
        """Every item of the table, raw (the CLI must not scan; the test may)."""
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True)
        return [item for page in pages for item in page["Items"]]

    def audit_keys(self) -> set[tuple[str, str]]:
        return {(i["pk"]["S"], i["sk"]["S"]) for i in self.items() if i["sk"]["S"].startswith("AUDIT#")}

    def audit_events(self, keys: set[tuple[str, str]]) -> list[dict]:
        return [i for i in self.items() if (i["pk"]["S"], i["sk"]["S"]) in keys]


@pytest.fixture(scope="module")
def world():
    """Moto as the operator's AWS: the CLI runs with the credentials of an assumed role whose session
    name is an email address, as single sign-on hands out."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        cloud = moto_cloud(patch, env={"RIGHTSDESK_STACK": None}, region=REGION)
        world = World(cloud)
        assumed = cloud.session.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{ROLE}", RoleSessionName=SESSION
        )["Credentials"]
        patch.setenv("AWS_ACCESS_KEY_ID", assumed["AccessKeyId"])
        patch.setenv("AWS_SECRET_ACCESS_KEY", assumed["SecretAccessKey"])
        patch.setenv("AWS_SESSION_TOKEN", assumed["SessionToken"])
        yield world
        aws_clients.forget_clients()
    config.reload()


@pytest.fixture(autouse=True)
def _restore(world):
    yield
    clock.set_offset(0)
    bind_table(world.table)


@pytest.fixture
def sts_calls(monkeypatch):
    """How many GetCallerIdentity calls the CLI made."""
    calls: list[str] = []
    real = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        if operation_name == "GetCallerIdentity":
            calls.append(operation_name)
        return real(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


def run(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))


def run_ok(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def operated(world, tmp_path_factory):
    """Every kind of operator action, each through its CLI command, on data of this module's own;
    the audit events they wrote, as stored."""
    live, gone = world.controller("live"), world.controller("gone")
    held, orphan = world.request(live), world.request(gone)
    world.request(live, verified=False)  # expires at the sweep below
    own = world.controller("own", delivery="internal")  # the operator queue: requests on the operator's own data
    extended, rejected = world.request(own), world.request(own)
    transition(queries.load_request(rejected), Status.IN_PROGRESS, actor="dispatcher")
    restricted = hashing.email_hash("rita@example.org")
    contacts.limit_processing(restricted, contacts.RESTRICTION, actor="subject")
    contacts.subscribe("cleo@example.org", ["newsletter"], actor="subject")
    policy_text = tmp_path_factory.mktemp("policy") / "terms.html"
    policy_text.write_text("<h1>Terms</h1>")
    summary = policy_text.with_name("en.md")
    summary.write_text("Shorter retention.")
    before = world.audit_keys()

    added = json.loads(run_ok("--json", "controllers", "add", "--name", "New", "--site", "new-op-shop",
                              "--contact", "dpo@new.test", "--delivery", "email"))  # fmt: skip
    new = added["controller"]["controller_id"]
    run_ok("controllers", "rotate-key", new)
    run_ok("controllers", "set-delivery", new, "--delivery", "pull")
    run_ok("controllers", "disable", new, "--reason", "unpaid")
    run_ok("controllers", "enable", new, "--reason", "paid")
    run_ok("controllers", "remove", gone, "--yes", "--reason", "offboarded")
    run_ok("requests", "answer", orphan, "--status", "completed")
    run_ok("hold", "place", "--request", held, "--reason", "case-17")
    run_ok("hold", "release", "--request", held)
    run_ok("requests", "show", held, "--reveal")
    run_ok("requests", "resolve", extended, "--extend-to", clock.isoformat(clock.now() + timedelta(days=40)),
           "--reason", "many systems")  # fmt: skip
    run_ok("requests", "resolve", rejected, "--reject", "--reason", "not ours")
    declared = json.loads(run_ok("--json", "breach", "declare", "--detected-at", "now", "--summary", "Leak.",
                                 "--categories", "chat_history", "--controllers", live, "--contact", "dpo@op.test"))  # fmt: skip
    incident = declared["incident"]["incident_id"]
    run_ok("breach", "resend", incident)  # its notice still pending: no notifier runs here
    run_ok("breach", "authority-notified", incident, "--reference", "IP-9", "--at", "now")
    run_ok("policy", "publish", "--doc", "terms", "--version", "2026-12", "--url", "https://example.com/terms",
           "--summary-file", str(summary), "--text-file", str(policy_text))  # fmt: skip
    run_ok("contacts", "add", "otto@example.org", "--list", "policy_updates")
    run_ok("contacts", "lift-restriction", "--email", "rita@example.org")
    issue = policy_text.with_name("issue.txt")
    issue.write_text("What is new.")
    run_ok("newsletter", "send", "--issue", "op-1", "--subject", "News", "--body-file", str(issue))
    run_ok("consents", "grant", "--email", "cleo@example.org", "--purpose", "analytics", "--source", "ticket-7")
    run_ok("consents", "withdraw", "--email", "cleo@example.org", "--purpose", "newsletter", "--source", "phone")
    run_ok("consents", "withdraw", "--email", "cleo@example.org", "--purpose", "analytics", "--source", "phone")
    clock.set_offset(timedelta(hours=73).total_seconds())
    run_ok("retention", "sweep")
    clock.set_offset(0)
    return world.audit_events(world.audit_keys() - before)


def test_every_operator_command_names_the_operator_on_each_event_it_writes(operated):
    actions = {(event["action"]["S"], event["actor"]["S"]) for event in operated}

    # each command's own event is there (a command that wrote nothing would leave a gap here)
    assert {
        ("controller_registered", "operator"),
        ("api_key_rotated", "operator"),
        ("delivery_changed", "operator"),
        ("controller_disabled", "operator"),
        ("controller_enabled", "operator"),
        ("controller_removed", "operator"),
        ("status_changed", "operator"),  # requests answer, requests resolve --reject
        ("due_extended", "operator"),  # requests resolve --extend-to
        ("legal_hold_placed", "operator"),
        ("legal_hold_released", "operator"),
        ("personal_data_viewed", "operator"),
        ("breach_declared", "operator"),
        ("authority_notified", "operator"),
        ("notices_resent", "operator"),
        ("issue_sent", "operator"),
        ("consent_granted", "operator"),
        ("consent_withdrawn", "operator"),  # consents withdraw of a purpose no list relies on
        ("policy_published", "operator"),
        ("subscribed", "operator"),
        ("restriction_lifted", "operator"),
        ("unsubscribed", "operator"),
        ("status_changed", "retention-sweeper"),  # the sweep run from the CLI: the machine's job, by whom
    } <= actions
    unnamed = [(e["action"]["S"], e["actor"]["S"]) for e in operated if "operator" not in e]
    assert unnamed == []
    for event in operated:
        assert {key: value["S"] for key, value in event["operator"]["M"].items()} == WHO


def test_the_session_name_is_stored_nowhere(world, operated):
    stored = json.dumps(world.items())

    assert SESSION not in stored and "jane.doe" not in stored
    assert CALLER not in stored
    assert WHO["arn_hash"] in stored


def test_one_sts_call_per_run_however_many_events_it_writes(world, sts_calls, tmp_path):
    rows = tmp_path / "contacts.csv"
    with rows.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "locale", "lists"])
        writer.writerows([[f"bulk{n}@example.org", "en", "policy_updates"] for n in range(3)])
    before = world.audit_keys()

    run_ok("contacts", "import", str(rows))

    written = world.audit_events(world.audit_keys() - before)
    assert [e["action"]["S"] for e in written] == ["subscribed"] * 3
    assert all(e["operator"]["M"]["principal"]["S"] == f"role/{ROLE}" for e in written)
    assert len(sts_calls) == 1


def test_commands_that_only_read_ask_sts_nothing(world, sts_calls):
    request_id = world.request(world.controller("reader"))

    run_ok("requests", "list")
    run_ok("requests", "show", request_id)
    run_ok("retention", "sweep", "--dry-run")

    assert sts_calls == []


def test_without_an_identity_nothing_is_written(world, monkeypatch):
    request_id = world.request(world.controller("noid"))
    real = botocore.client.BaseClient._make_api_call

    def expired(self, operation_name, api_params):
        if operation_name == "GetCallerIdentity":
            raise ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, operation_name)
        return real(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", expired)
    before = world.audit_keys()

    placed = run("hold", "place", "--request", request_id, "--reason", "case-18")
    revealed = run("requests", "show", request_id, "--reveal")

    for result in (placed, revealed):
        assert result.exit_code == 1
        assert "cannot tell who you are" in result.stderr and "nothing was changed" in result.stderr
    assert SUBJECT not in revealed.stdout
    assert world.audit_keys() == before


def test_the_trail_shows_who_and_older_events_still_read(world):
    controller_id = world.controller("trail")  # registered by the core directly: actor "operator", nobody named
    run_ok("controllers", "disable", controller_id)

    shown = run_ok("controllers", "history", controller_id)
    listed = json.loads(run_ok("--json", "controllers", "history", controller_id))["events"]

    named = operator_identity.label(**WHO)
    assert f"operator {named}" in shown
    assert SESSION not in shown and SESSION not in json.dumps(listed)
    by_action = {event["action"]: event for event in listed}
    assert by_action["controller_disabled"]["operator"] == WHO
    assert (by_action["controller_registered"]["actor"], by_action["controller_registered"]["operator"]) == (
        "operator",
        None,
    )
