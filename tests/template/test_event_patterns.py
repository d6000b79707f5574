"""The template's event patterns (stream FilterCriteria, EventBridge rules) let through the events
their functions are written for, and only those, as moto's EventBridge matcher reads them (the
local run's matcher, local/patterns.py).

The samples in events/<function>/ are what AWS delivers: stream records our writes produce, SES's
bounce and complaint events for our configuration set. tests/unit/test_deletion_audit.py puts
records moto's stream made from our own writes through the same filters.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from local.patterns import matches, parse_filters, pattern_of
from tests.template.test_template import ROOT, events_of, load_template, props, resources

STACK = "rightsdesk"  # the samples name resources as this stack's: rightsdesk-<LogicalId>


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def samples(template: dict, function: str) -> list[dict]:
    folder = ROOT / "events" / Path(props(template["Resources"][function])["CodeUri"]).name
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def triggers(template: dict, kind: str) -> list[tuple[str, dict]]:
    return [
        (name, event["Properties"])
        for name in resources(template, "AWS::Serverless::Function")
        for event in events_of(template, name).values()
        if event.get("Type") == kind
    ]


def resolved(node: Any) -> Any:
    """A rule's pattern as deployed: a Ref is the resource's name (the samples' naming)."""
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return f"{STACK}-{node['Ref']}"
        return {key: resolved(value) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(value) for value in node]
    return node


def test_every_stream_filter_passes_its_samples_and_nothing_else(template):
    filtered = [(name, p) for name, p in triggers(template, "DynamoDB") if p.get("FilterCriteria")]
    assert {name for name, _ in filtered} >= {"DeletionAuditFunction", "OwnRequestsFunction"}
    for name, properties in filtered:
        filters = parse_filters(properties["FilterCriteria"])
        records = [
            record
            for sample in samples(template, name)
            for record in sample.get("Records", [])
            if record.get("eventSource") == "aws:dynamodb"
        ]
        assert records, f"{name}: no stream samples"
        for record in records:
            assert any(f.matches_event(record) for f in filters), f"{name}: a sample is filtered out"
            inserted = {**copy.deepcopy(record), "eventName": "INSERT"}
            assert not any(f.matches_event(inserted) for f in filters), f"{name}: an INSERT passes"
        for index, pattern in enumerate(filters):
            assert any(pattern.matches_event(r) for r in records), f"{name}: filter {index} has no sample"


def test_bounces_and_complaints_of_our_configuration_set_match_their_rule(template):
    rules = triggers(template, "EventBridgeRule")
    assert sorted(name for name, _ in rules) == ["LifecycleFunction", "SesEventsFunction"]
    for name, properties in [rule for rule in rules if rule[0] == "SesEventsFunction"]:
        rule = pattern_of(resolved(properties["Pattern"]))
        events = samples(template, name)
        assert {e["detail-type"] for e in events} == {"Email Bounced", "Email Complaint Received"}
        for event in events:
            assert rule.matches_event(event), event["detail-type"]
            other_set = copy.deepcopy(event)
            other_set["detail"]["mail"]["tags"]["ses:configuration-set"] = ["someone-elses-set"]
            assert not rule.matches_event(other_set), "another configuration set's events are not ours"
            delivered = {**event, "detail-type": "Email Delivered"}
            assert not rule.matches_event(delivered)


def test_a_filter_moto_does_not_know_fails_instead_of_matching_everything():
    typo = {"dynamodb": {"Keys": {"sk": {"S": [{"prefx": "AUDIT#"}]}}}}
    record = {"dynamodb": {"Keys": {"sk": {"S": "REQUEST"}}}}
    assert EventPattern.load(json.dumps(typo)).matches_event(record), "moto alone matches an unknown filter"
    with pytest.raises(ValueError, match="prefx"):
        matches(typo, record)
    with pytest.raises(ValueError, match="prefx"):
        parse_filters({"Filters": [{"Pattern": json.dumps({"eventName": [{"anything-but": {"prefx": "A"}}]})}]})


def test_the_products_account_events_match_the_lifecycle_rule_and_nothing_else_does(template):
    [(name, properties)] = [rule for rule in triggers(template, "EventBridgeRule") if rule[0] == "LifecycleFunction"]
    rule = pattern_of(resolved(properties["Pattern"]))
    events = [e for e in samples(template, name) if e["detail-type"] != "Scheduled Event"]
    assert {e["detail-type"] for e in events} == {"Account Activity", "Account Cancelled"}
    for event in events:
        assert rule.matches_event(event), event["detail-type"]
        assert not rule.matches_event({**event, "source": "someone.else"})
        assert not rule.matches_event({**event, "detail-type": "Account Created"})
