"""The connector state machine (statemachines/connector_execution.asl.json) and what it may reach: a
Standard machine whose every task is a callback message on ConnectorTaskQueue holding ids only, every
failure caught into the park step, a task timeout everywhere; its role sends to that queue alone, and
only the worker answers its tasks (docs/connectors.md, Orchestration)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator

import pytest

from tests.template.test_template import ROOT, as_list, load_template, props

MACHINE = "ConnectorStateMachine"
CALLBACK = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
# What a task message may name: ids, the step's word, the caught error and the token.
MESSAGE_FIELDS = {"step", "request_id.$", "execution_id.$", "connector_id.$", "error.$", "token.$"}
PARK = "Park"


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def definition(tpl: dict) -> dict:
    return json.loads((ROOT / props(tpl["Resources"][MACHINE])["DefinitionUri"]).read_text())


def states(node: dict) -> Iterator[tuple[str, dict]]:
    for name, state in node["States"].items():
        yield name, state
        if "ItemProcessor" in state:
            yield from states(state["ItemProcessor"])


def check_machine(tpl: dict, asl: dict) -> list[str]:
    problems = []
    p = props(tpl["Resources"][MACHINE])
    if p.get("Type") != "STANDARD":
        problems.append(f"{MACHINE} is not a Standard state machine")
    text = json.dumps(asl)
    used = set(re.findall(r"\$\{(\w+)\}", text))
    if used != set(p.get("DefinitionSubstitutions") or {}):
        problems.append(f"substitutions {sorted(used)} != {sorted(p.get('DefinitionSubstitutions') or {})}")
    for name, state in states(asl):
        if state.get("Type") != "Task":
            continue
        if state.get("Resource") != CALLBACK:
            problems.append(f"{name}: not a callback message on the task queue")
        parameters = state.get("Parameters") or {}
        if parameters.get("QueueUrl") != "${ConnectorTaskQueueUrl}":
            problems.append(f"{name}: sends elsewhere than ConnectorTaskQueue")
        extra = set(parameters.get("MessageBody") or {}) - MESSAGE_FIELDS
        if extra:
            problems.append(f"{name}: the message names {sorted(extra)} (ids only)")
        if not isinstance(state.get("TimeoutSeconds"), int):
            problems.append(f"{name}: no TimeoutSeconds (a lost task would wait a year)")
        if "Retry" in state:
            problems.append(f"{name}: Retry in the state machine (retries live in the worker, on the clock)")
    for name, state in asl["States"].items():
        if state.get("Type") in ("Task", "Map") and name != PARK:
            catches = state.get("Catch") or []
            if not any("States.ALL" in c.get("ErrorEquals", []) and c.get("Next") == PARK for c in catches):
                problems.append(f"{name}: a failure is not caught into {PARK}")
    return problems


def check_grants(tpl: dict) -> list[str]:
    problems = []
    machine = props(tpl["Resources"][MACHINE])
    for policy in as_list(machine.get("Policies")):
        if "SQSSendMessagePolicy" in policy and policy["SQSSendMessagePolicy"] != {
            "QueueName": {"Fn::GetAtt": ["ConnectorTaskQueue", "QueueName"]}
        }:
            problems.append(f"{MACHINE}: sends to another queue")
        for statement in as_list(policy.get("Statement")):
            actions = [str(a) for a in as_list(statement.get("Action"))]
            if any(a.startswith(("sqs:", "dynamodb:", "lambda:", "states:", "s3:")) for a in actions):
                problems.append(f"{MACHINE}: {actions} beyond its queue")
    for name, resource in tpl["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for policy in as_list(props(resource).get("Policies")):
            for statement in as_list(policy.get("Statement") if isinstance(policy, dict) else None):
                actions = [str(a) for a in as_list(statement.get("Action"))]
                answers = [a for a in actions if a.startswith("states:SendTask")]
                # the worker, and the route an HTTP connector's product calls back on (a step it answered 202 to)
                if answers and name not in ("ConnectorWorkerFunction", "ConnectorCallbackFunction"):
                    problems.append(f"{name}: may answer the connector state machine's tasks")
                if any(a.startswith("states:") for a in actions) and statement.get("Resource") != {"Ref": MACHINE}:
                    problems.append(f"{name}: a states: action beyond {MACHINE}")
    return problems


def test_every_task_is_an_id_only_callback_with_a_timeout_and_every_failure_parks(template):
    assert check_machine(template, definition(template)) == []


def test_the_machine_sends_to_its_queue_alone_and_only_the_worker_answers(template):
    assert check_grants(template) == []


def _drop_catch(asl: dict) -> None:
    del asl["States"]["Finish"]["Catch"]


def _personal_field(asl: dict) -> None:
    asl["States"]["Plan"]["Parameters"]["MessageBody"]["email.$"] = "$.email"


def _asl_retry(asl: dict) -> None:
    asl["States"]["Plan"]["Retry"] = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}]


def _no_timeout(asl: dict) -> None:
    del asl["States"]["Stages"]["ItemProcessor"]["States"]["Connectors"]["ItemProcessor"]["States"]["Connector"][
        "TimeoutSeconds"
    ]


@pytest.mark.parametrize("mutation", [_drop_catch, _personal_field, _asl_retry, _no_timeout])
def test_the_machine_checks_catch(template, mutation: Callable[[dict], None]):
    broken = copy.deepcopy(definition(template))
    mutation(broken)
    assert check_machine(template, broken)


def test_the_grant_checks_catch(template):
    broken = copy.deepcopy(template)
    worker = props(broken["Resources"]["ControllerApiFunction"])
    worker.setdefault("Policies", []).append(
        {"Statement": [{"Effect": "Allow", "Action": "states:SendTaskSuccess", "Resource": {"Ref": MACHINE}}]}
    )
    assert check_grants(broken)
