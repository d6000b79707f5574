"""`rightsdesk controllers add|show|rotate-key|set-delivery` against moto in-process."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from rightsdesk.platform import config, sealing
from rightsdesk.routing import controller_lookup, registry
from rightsdesk_cli.main import app
from tests.support.aws import moto_cloud

REGION = "eu-central-1"
PUBLIC_URL = "https://93.184.216.34/hooks"


@pytest.fixture(scope="module")
def table():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        world = moto_cloud(
            patch,
            "rightsdesk-cli-ctl",
            data_key=True,
            region=REGION,
            env={"RIGHTSDESK_STACK": None, "ALLOW_HTTP_WEBHOOKS": None},
            no_scans="the CLI must not scan the table",
        )
        yield world.tables["RightsTable"]
        sealing.forget_clients()
    config.reload()


def run(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))


def add(site: str, *extra: str, delivery: str = "webhook"):
    options = ["--webhook-url", PUBLIC_URL] if delivery == "webhook" and "--webhook-url" not in extra else []
    return run(
        "--json",
        "controllers",
        "add",
        "--name",
        "Acme d.o.o.",
        "--site",
        site,
        "--domain",
        f"{site}.example",
        "--domain",
        f"www.{site}.example",
        "--contact",
        "dpo@acme.example",
        "--delivery",
        delivery,
        *options,
        *extra,
    )


def test_add_prints_key_and_secret_once_as_json(table):
    result = add("acme", "--sla-days", "14", "--purge-after", "PT30M", "--locale", "de")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    controller = created["controller"]
    assert created["api_key"].startswith("rdk_") and created["webhook_secret"].startswith("whsec_")
    assert controller["domains"] == ["acme.example", "www.acme.example"]
    assert (controller["sla_days"], controller["purge_after"], controller["locale"]) == (14, "PT30M", "de")
    item = controller_lookup.get_controller(controller["controller_id"])
    assert item.purge_after_seconds == 1800
    assert registry.authenticate(created["api_key"]).controller_id == controller["controller_id"]

    shown = run("--json", "controllers", "show", controller["controller_id"])
    assert shown.exit_code == 0
    assert created["api_key"] not in shown.stdout and created["webhook_secret"] not in shown.stdout
    assert json.loads(shown.stdout)["controller"]["webhook_secret"] == "set"


def test_add_for_people_says_the_secrets_are_shown_once(table):
    result = run(
        "controllers",
        "add",
        "--name",
        "Own data",
        "--site",
        "operator",
        "--contact",
        "privacy@op.example",
        "--delivery",
        "internal",
    )
    assert result.exit_code == 0, result.output
    assert "rdk_" in result.stdout and "Shown once" in result.stdout
    assert "whsec_" not in result.stdout


def test_rotate_key_replaces_the_key(table):
    controller_id = json.loads(add("rotco", delivery="pull").stdout)["controller"]["controller_id"]
    old_hash = controller_lookup.get_controller(controller_id).api_key_hash
    result = run("--json", "controllers", "rotate-key", controller_id)
    assert result.exit_code == 0, result.output
    new_key = json.loads(result.stdout)["api_key"]
    assert registry.authenticate(new_key).controller_id == controller_id
    assert controller_lookup.get_controller(controller_id).api_key_hash != old_hash


def test_set_delivery_prints_a_secret_only_when_it_issues_one(table):
    controller_id = json.loads(add("switchco", delivery="pull").stdout)["controller"]["controller_id"]
    to_webhook = json.loads(
        run(
            "--json", "controllers", "set-delivery", controller_id, "--delivery", "webhook", "--webhook-url", PUBLIC_URL
        ).stdout
    )
    assert to_webhook["webhook_secret"].startswith("whsec_")
    to_email = json.loads(run("--json", "controllers", "set-delivery", controller_id, "--delivery", "email").stdout)
    assert to_email["webhook_secret"] is None and to_email["controller"]["webhook_url"] is None


@pytest.mark.parametrize(
    "args, code, words",
    [
        (("--webhook-url", "https://10.1.2.3/hook"), "webhook_url_refused", "--webhook-url"),
        (("--webhook-url", "http://93.184.216.34/hook"), "webhook_url_refused", "https"),
        (("--purge-after", "1 hour"), "invalid_input", "--purge-after"),
        (("--sla-days", "400"), "invalid_input", "--sla-days"),
        (("--locale", "fr"), "invalid_input", "--locale"),
    ],
)
def test_invalid_options_are_explained_and_exit_1(table, args, code, words):
    result = add("badco", *args)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == code and words in error["message"]


def test_a_taken_site_key_and_an_unknown_controller_are_errors(table):
    assert add("takenco", delivery="email").exit_code == 0
    taken = add("takenco", delivery="email")
    assert taken.exit_code == 1 and json.loads(taken.stdout)["error"]["code"] == "conflict"
    missing = run("--json", "controllers", "show", "ctl_nobody")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["error"]["code"] == "not_found"


def test_history_lists_what_happened_to_a_controller_newest_first(table):
    controller_id = json.loads(add("historyco", delivery="pull").stdout)["controller"]["controller_id"]
    assert run("--json", "controllers", "rotate-key", controller_id).exit_code == 0
    assert run("--json", "controllers", "set-delivery", controller_id, "--delivery", "email").exit_code == 0

    result = run("--json", "controllers", "history", controller_id)
    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)["events"]
    assert len(events) == 3
    assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
    assert events[-1]["action"] == registry.history(controller_id)[-1].action  # the registration, oldest
    assert (
        json.loads(run("--json", "controllers", "history", controller_id, "--limit", "1").stdout)["events"]
        == events[:1]
    )
    people = run("controllers", "history", controller_id)
    assert people.exit_code == 0 and events[0]["action"] in people.stdout
    assert "dpo@acme.example" not in result.stdout + people.stdout, "ids and words only"
    missing = run("--json", "controllers", "history", "ctl_nobody")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["error"]["code"] == "not_found"


def test_set_tenant_sets_and_clears_a_controllers_tenant_id(table):
    controller_id = json.loads(add("tenantco", delivery="pull").stdout)["controller"]["controller_id"]
    assert (
        json.loads(run("--json", "controllers", "show", controller_id).stdout)["controller"]["tenant_id"]
        == controller_id
    )
    answer = run("--json", "controllers", "set-tenant", controller_id, "--tenant-id", "acme-tenant-7")
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout)["controller"]["tenant_id"] == "acme-tenant-7"
    assert run("controllers", "set-tenant", controller_id, "--tenant-id", "a/b").exit_code != 0
    cleared = json.loads(run("--json", "controllers", "set-tenant", controller_id).stdout)
    assert cleared["controller"]["tenant_id"] == controller_id
