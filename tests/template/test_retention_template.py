"""template.yaml keeps the retention engine's promises: the 10-minute sweep, the filtered stream
handler with retries and a watched dead-letter queue, least privilege, one parameter per rule, and a
sample event per trigger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.template.test_template import ROOT, as_list, events_of, load_template, props, referenced_ids, resources

# The rules of DESIGN.md's Retention table; rules other issues add are theirs to parameterize.
DESIGN_RULES = {
    "unverified_request": "RetentionUnverifiedRequestSeconds",
    "verification_code": "RetentionVerificationCodeSeconds",
    "delivered_subject_data": "RetentionDeliveredSubjectDataSeconds",
    # not in DESIGN.md's table: a request whose delivery failed (docs/operations.md, The rules)
    "undelivered_subject_data": "RetentionUndeliveredSubjectDataSeconds",
    "closed_internal_request": "RetentionClosedInternalRequestSeconds",
    "skeleton": "RetentionSkeletonSeconds",
    "consent_record": "RetentionConsentRecordSeconds",
    # DESIGN.md's "forwarded request a pull controller never fetches: a documented period after its due date"
    "unfetched_pull_request": "RetentionUnfetchedPullRequestSeconds",
    # not in DESIGN.md's table: an optional list's issue, read when each member's mail is sent
    "list_issue": "RetentionListIssueSeconds",
    # DESIGN.md's "delivery attempt log (no bodies)"
    "delivery_attempt": "RetentionDeliveryAttemptSeconds",
}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def statements(template: dict, function: str) -> list[dict]:
    found = []
    for policy in as_list(props(template["Resources"][function]).get("Policies")):
        if isinstance(policy, dict) and "Statement" in policy:
            found += as_list(policy["Statement"])
    return found


def actions(template: dict, function: str) -> set[str]:
    return {action for statement in statements(template, function) for action in as_list(statement.get("Action"))}


def test_the_sweep_runs_every_10_minutes(template):
    [schedule] = [e for e in events_of(template, "RetentionFunction").values() if e["Type"] == "Schedule"]
    assert schedule["Properties"]["Schedule"] == "rate(10 minutes)"
    timeout = props(template["Resources"]["RetentionFunction"])["Timeout"]
    assert timeout < 600, "a run must end before the next one starts"


def test_the_sweep_may_query_the_expiry_index_but_never_scan(template):
    granted = actions(template, "RetentionFunction")
    assert "dynamodb:Query" in granted and "dynamodb:DeleteItem" in granted
    assert not {"dynamodb:Scan", "dynamodb:*"} & granted
    query = [s for s in statements(template, "RetentionFunction") if "dynamodb:Query" in as_list(s["Action"])]
    assert [s["Resource"] for s in query] == [{"Fn::Sub": "${RightsTable.Arn}/index/GSI2"}]
    managed = [
        p
        for p in as_list(props(template["Resources"]["RetentionFunction"]).get("Policies"))
        if isinstance(p, dict) and "Statement" not in p
    ]
    assert not [p for p in managed if "DynamoDBCrudPolicy" in p or "DynamoDBReadPolicy" in p], "those grant Scan"


def test_the_deletion_audit_reads_the_rights_tables_stream_filtered_with_retries_and_a_watched_dlq(template):
    [stream] = [
        e["Properties"] for e in events_of(template, "DeletionAuditFunction").values() if e["Type"] == "DynamoDB"
    ]
    assert stream["Stream"] == {"Fn::GetAtt": ["RightsTable", "StreamArn"]}
    assert stream["StartingPosition"] == "LATEST"
    assert stream["BisectBatchOnFunctionError"] is True
    assert 0 <= stream["MaximumRetryAttempts"] <= 100
    patterns = [json.loads(f["Pattern"]) for f in stream["FilterCriteria"]["Filters"]]
    assert {tuple(p["eventName"]) for p in patterns} == {("REMOVE",), ("MODIFY",)}
    dlq = referenced_ids(stream["DestinationConfig"]["OnFailure"]["Destination"])
    assert dlq and dlq <= set(resources(template, "AWS::SQS::Queue"))
    watched = set()
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        watched |= referenced_ids(props(alarm).get("Dimensions"))
    assert dlq <= watched, "the on-failure queue has an alarm"


STREAM_READS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}


def test_the_deletion_audit_only_adds_items(template):
    on_items = {
        a
        for s in statements(template, "DeletionAuditFunction")
        for a in as_list(s["Action"])
        if a.startswith("dynamodb:")
        and "StreamArn" not in json.dumps(s["Resource"])
        and "/stream/" not in json.dumps(s["Resource"])
    }
    assert on_items == {"dynamodb:PutItem"}
    on_stream = {a for a in actions(template, "DeletionAuditFunction") if a.startswith("dynamodb:")} - on_items
    assert on_stream == STREAM_READS


def test_every_design_rule_has_a_parameter_that_reaches_every_function(template):
    from rightsdesk.kernel.retention import Rule

    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for rule, parameter in DESIGN_RULES.items():
        Rule(rule)  # still a rule of the core
        spec = template["Parameters"][parameter]
        assert spec["Default"] == "", f"{parameter}: the default must be the core's table, not a copy of it"
        assert variables[f"RETENTION_{rule.upper()}_SECONDS"] == {"Ref": parameter}


def test_every_retention_trigger_has_a_sample_event(template):
    schedule_samples = [json.loads(f.read_text()) for f in (ROOT / "events" / "retention").glob("*.json")]
    assert any(s.get("detail-type") == "Scheduled Event" for s in schedule_samples)
    stream_samples = [json.loads(f.read_text()) for f in (ROOT / "events" / "deletion_audit").glob("*.json")]
    names = {r["eventName"] for s in stream_samples for r in s["Records"] if r["eventSource"] == "aws:dynamodb"}
    assert names == {"REMOVE", "MODIFY"}
    assert any(
        r.get("userIdentity", {}).get("principalId") == "dynamodb.amazonaws.com"
        for s in stream_samples
        for r in s["Records"]
    ), "a TTL deletion sample"


def test_each_function_has_its_makefile(template):
    for function, folder in (("RetentionFunction", "retention"), ("DeletionAuditFunction", "deletion_audit")):
        assert props(template["Resources"][function])["CodeUri"] == f"functions/{folder}"
        assert f"FUNCTION := {function}" in Path(ROOT / "functions" / folder / "Makefile").read_text()
