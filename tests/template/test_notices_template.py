"""template.yaml's part of the notices: the send-rate arithmetic is wired to one parameter,
bounces reach SesEventsFunction from our configuration set only, and every trigger has a sample."""

from __future__ import annotations

import json
from pathlib import Path

from rightsdesk.kernel.retention import Rule
from rightsdesk.outbound import notify
from tests.template.test_template import events_of, load_template, props, resources

ROOT = Path(__file__).resolve().parents[2]
ISSUE_5_RULES = (Rule.BREACH_RECORD, Rule.BREACH_RECIPIENT, Rule.SUPPRESSION, Rule.UNSUBSCRIBE_TOKEN)


def _template() -> dict:
    return load_template()


def test_the_notifier_paces_itself_with_the_parameters_that_bound_its_instances():
    tpl = _template()
    notifier = props(tpl["Resources"]["NotifierFunction"])
    env = notifier["Environment"]["Variables"]
    mail_event = events_of(tpl, "NotifierFunction")["Mail"]["Properties"]
    concurrency = {"Ref": "NotifierConcurrency"}
    assert notifier["ReservedConcurrentExecutions"] == concurrency
    assert mail_event["ScalingConfig"]["MaximumConcurrency"] == concurrency
    assert env["NOTIFIER_CONCURRENCY"] == concurrency
    assert env["SES_MAX_SEND_RATE"]["Fn::If"][2] == {"Ref": "SesMaxSendRate"}
    assert mail_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # A batch is BatchSize sends, one every concurrency / rate seconds: with the defaults it takes
    # a fraction of the timeout (the handler returns what it cannot pace in time; docs/notices.md).
    parameters = tpl["Parameters"]
    default = (
        mail_event["BatchSize"] * parameters["NotifierConcurrency"]["Default"] / parameters["SesMaxSendRate"]["Default"]
    )
    assert default < notifier["Timeout"] / 4


def test_the_last_attempt_the_notifier_knows_is_the_queues():
    tpl = _template()
    max_receives = props(tpl["Resources"]["MailQueue"])["RedrivePolicy"]["maxReceiveCount"]
    env = props(tpl["Resources"]["NotifierFunction"])["Environment"]["Variables"]
    assert int(env["MAIL_MAX_ATTEMPTS"]) == max_receives == notify.DEFAULT_MAX_ATTEMPTS


def test_bounces_and_complaints_of_our_configuration_set_reach_the_ses_events_function():
    tpl = _template()
    destination = props(tpl["Resources"]["MailEventDestination"])
    assert destination["ConfigurationSetName"] == {"Ref": "MailConfigurationSet"}
    assert sorted(destination["EventDestination"]["MatchingEventTypes"]) == ["bounce", "complaint"]
    assert destination["EventDestination"]["EventBridgeDestination"]["EventBusArn"]["Fn::Sub"].endswith(
        "event-bus/default"
    )
    function = props(tpl["Resources"]["SesEventsFunction"])
    rule = function["Events"]["BouncesAndComplaints"]
    assert rule["Type"] == "EventBridgeRule"
    pattern = rule["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.ses"]
    assert sorted(pattern["detail-type"]) == ["Email Bounced", "Email Complaint Received"]
    assert pattern["detail"]["mail"]["tags"]["ses:configuration-set"] == [{"Ref": "MailConfigurationSet"}]
    dlq = {"Fn::GetAtt": ["SesEventsDeadLetterQueue", "Arn"]}
    assert rule["Properties"]["DeadLetterConfig"]["Arn"] == dlq
    assert function["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == dlq
    statement = props(tpl["Resources"]["SesEventsDeadLetterQueuePolicy"])["PolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["SesEventsFunctionBouncesAndComplaints", "Arn"]
    }


def test_the_ses_events_function_only_writes_suppressions():
    function = props(_template()["Resources"]["SesEventsFunction"])
    table_actions = [
        statement["Action"]
        for policy in function["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
        if statement.get("Resource") == {"Fn::GetAtt": ["RightsTable", "Arn"]}
    ]
    assert table_actions == ["dynamodb:UpdateItem"]


def test_every_eventbridge_triggered_function_has_a_sample_event():
    for name, function in resources(_template(), "AWS::Serverless::Function").items():
        rules = [
            e["Properties"]["Pattern"]
            for e in (props(function).get("Events") or {}).values()
            if e.get("Type") == "EventBridgeRule"
        ]
        if not rules:
            continue
        folder = ROOT / "events" / Path(props(function)["CodeUri"]).name
        samples = [json.loads(f.read_text()) for f in folder.glob("*.json")]
        for pattern in rules:
            matching = [
                s
                for s in samples
                if s.get("source") in pattern["source"] and s.get("detail-type") in pattern["detail-type"]
            ]
            assert {s["detail-type"] for s in matching} == set(pattern["detail-type"]), f"{name}: samples in {folder}"


def test_the_notice_retention_rules_can_be_overridden_by_parameters():
    tpl = _template()
    env = tpl["Globals"]["Function"]["Environment"]["Variables"]
    for rule in ISSUE_5_RULES:
        variable = f"RETENTION_{rule.value.upper()}_SECONDS"
        assert variable in env, variable
        assert env[variable]["Ref"] in tpl["Parameters"]


def test_the_cli_finds_the_queues_in_the_stacks_outputs():
    outputs = _template()["Outputs"]
    assert outputs["MailQueueUrl"]["Value"] == {"Ref": "MailQueue"}
    assert outputs["DeliveryQueueUrl"]["Value"] == {"Ref": "DeliveryQueue"}
