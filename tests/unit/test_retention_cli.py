"""`rightsdesk retention sweep` and `rightsdesk hold` against moto in-process."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rightsdesk.kernel import clock
from rightsdesk_cli.main import app
from tests.support.retention_world import EMAIL, world_in_moto

HOUR = 3600


@pytest.fixture
def world():
    with world_in_moto() as made:
        yield made


def run(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))


def run_json(*args: str):
    result = run("--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_dry_run_lists_what_would_go_by_rule_with_counts(world):
    unverified = world.submit()
    delivered, _ = world.verified()
    world.deliver(delivered)
    clock.set_offset(72 * HOUR + 1)

    preview = run_json("retention", "sweep", "--dry-run")
    human = run("retention", "sweep", "--dry-run")

    assert preview["dry_run"] is True
    assert preview["by_rule"] == {
        "delivered_subject_data": {"purge": 1},
        "unverified_request": {"delete": 1},
        "verification_code": {"delete": 1},
    }
    assert {item["pk"] for item in preview["items"]} == {f"REQ#{unverified}", f"REQ#{delivered}"}
    assert human.exit_code == 0, human.output
    for text in ("would go", "unverified_request", "delivered_subject_data", "purge", f"REQ#{unverified}"):
        assert text in human.stdout
    assert EMAIL not in human.stdout
    assert world.item(unverified) is not None, "a dry run changes nothing"


def test_sweep_runs_with_a_progress_bar_and_reports_by_rule(world):
    ids = [world.submit() for _ in range(3)]
    clock.set_offset(72 * HOUR + 1)

    # as on a terminal: rich draws progress bars only there
    result = CliRunner(env={"COLUMNS": "200", "FORCE_COLOR": "1"}).invoke(app, ["retention", "sweep"])

    assert result.exit_code == 0, result.output
    assert "sweeping" in result.stderr and "6/6" in result.stderr, "the progress bar goes to stderr"
    assert "unverified_request" in result.stdout and "deleted" in result.stdout
    assert all(world.item(request_id) is None for request_id in ids)
    again = run_json("retention", "sweep")
    assert again["by_rule"] == {}


def test_hold_place_and_release(world):
    request_id = world.submit()

    placed = run_json("hold", "place", "--request", request_id, "--reason", "case 17", "--until", "2030-01-31")
    clock.set_offset(80 * HOUR)
    run_json("retention", "sweep")
    shown = run_json("requests", "show", request_id)
    released = run_json("hold", "release", "--request", request_id)
    swept = run_json("retention", "sweep")

    assert placed["legal_hold"]["reason"] == "case 17"
    assert placed["legal_hold"]["until"] == "2030-01-31T00:00:00Z"
    assert shown["request"]["legal_hold"]["reason"] == "case 17", "held: still readable past its time"
    assert released["retention_rule"] == "unverified_request" and released["expires_at"]
    assert swept["by_rule"]["unverified_request"] == {"deleted": 1}


def test_hold_errors_are_one_line(world):
    request_id = world.submit()
    run_json("hold", "place", "--request", request_id, "--reason", "case 17")

    twice = run("hold", "place", "--request", request_id, "--reason", "case 18")
    not_held = run("--json", "hold", "release", "--request", world.submit())
    unknown = run("hold", "place", "--request", "dsr_nothing", "--reason", "x")

    assert twice.exit_code == 1 and "already under a legal hold" in twice.stderr
    assert json.loads(not_held.stdout)["error"]["code"] == "not_held"
    assert unknown.exit_code == 1 and "no request dsr_nothing" in unknown.stderr
