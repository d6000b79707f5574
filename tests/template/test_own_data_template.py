"""template.yaml keeps the promises of the operator's own data: OwnRequestsFunction sees only
the dispatcher's verified -> in_progress write, retries into a watched dead-letter queue, never
scans; the supervisory authority reaches every function; the export routes are public."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.patterns import any_match, parse_filters
from tests.template.test_template import ROOT, as_list, events_of, load_template, props, referenced_ids, resources

FUNCTION = "OwnRequestsFunction"
SAMPLE = ROOT / "events" / "own_requests" / "routed_to_operator.json"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def stream_event(template: dict) -> dict:
    [event] = [e["Properties"] for e in events_of(template, FUNCTION).values() if e["Type"] == "DynamoDB"]
    return event


def test_it_reads_only_the_move_to_in_progress_from_verified(template):
    patterns = parse_filters(stream_event(template)["FilterCriteria"])
    sample = json.loads(SAMPLE.read_text())["Records"][0]
    assert any_match(patterns, sample)
    for old, new in (("forwarded", "delivered"), ("delivered", "in_progress"), ("in_progress", "completed")):
        record = json.loads(json.dumps(sample))
        record["dynamodb"]["OldImage"]["status"]["S"], record["dynamodb"]["NewImage"]["status"]["S"] = old, new
        assert not any_match(patterns, record), f"{old} -> {new} is not the operator's to carry out"
    audit = json.loads(json.dumps(sample))
    audit["dynamodb"]["Keys"]["sk"]["S"] = "AUDIT#2026-11-23T09:14:42.087313Z#0a1b2c3d"
    assert not any_match(patterns, audit)


def test_failures_are_retried_then_parked_in_a_watched_queue(template):
    event = stream_event(template)
    assert event["BisectBatchOnFunctionError"] is True and event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    [queue] = referenced_ids(event["DestinationConfig"]["OnFailure"]["Destination"])
    alarmed = {
        name
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
        for name in referenced_ids(props(alarm).get("Dimensions"))
    }
    assert queue in alarmed


def test_it_never_scans_and_sends_mail_only_through_the_queue(template):
    statements = [
        s
        for policy in as_list(props(template["Resources"][FUNCTION])["Policies"])
        if isinstance(policy, dict) and "Statement" in policy
        for s in as_list(policy["Statement"])
    ]
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert "dynamodb:Scan" not in actions and not any(a.startswith("ses:") for a in actions)
    assert f"FUNCTION := {FUNCTION}" in Path(ROOT / "functions" / "own_requests" / "Makefile").read_text()


def test_the_supervisory_authority_reaches_every_function(template):
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for suffix in ("Name", "Url", "Email"):
        parameter = f"SupervisoryAuthority{suffix}"
        assert parameter in template["Parameters"]
        assert variables[f"SUPERVISORY_AUTHORITY_{suffix.upper()}"] == {"Ref": parameter}


def test_the_export_routes_are_public_and_on_the_public_function(template):
    events = props(template["Resources"]["PublicApiFunction"])["Events"].values()
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "Api"}
    assert {("GET", "/v1/requests/{id}/export"), ("GET", "/v1/schemas/export.json")} <= routes
