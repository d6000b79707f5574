"""The template's narrow IAM statements cover what the functions really do: a stack records every
AWS call its handlers make (local/calls.py) while a subject and a controller go through the main
paths, and each DynamoDB action (on its table or index) and each direct KMS Encrypt or Decrypt
(by its sealed purpose) must be allowed by the calling function's own policies in template.yaml.
Moto enforces no IAM: without this, a statement narrowed too far would only fail once deployed."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

from local.template import read as read_template
from tests.support.flows import JSON, Flow

pytestmark = pytest.mark.integration

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
PREFIX = "rightsdesk-local-"
PURPOSE_KEY = "kms:EncryptionContext:rightsdesk:purpose"
# What SAM's policy templates grant on DynamoDB (their documented statements).
_CRUD = [
    "dynamodb:GetItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:Scan",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:BatchGetItem",
    "dynamodb:DescribeTable",
    "dynamodb:ConditionCheckItem",
]
_READ = ["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"]
SAM_TEMPLATES = {"DynamoDBCrudPolicy": _CRUD, "DynamoDBReadPolicy": _READ}


def _targets(resource) -> set[tuple[str, str | None]]:
    """(table logical ID, index or None) a statement's Resource names; '*' for every index."""
    found = set()
    for value in resource if isinstance(resource, list) else [resource]:
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add((target[0] if isinstance(target, list) else target.split(".")[0], None))
        elif isinstance(value, dict) and "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            match = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/([\w*]+)", text)
            if match:
                found.add((match.group(1), match.group(2)))
    return found


def grants(template: dict, function: str) -> list[dict]:
    """The function's Allow statements, SAM DynamoDB policy templates expanded."""
    statements = []
    for policy in template["Resources"][function]["Properties"].get("Policies") or []:
        if "Statement" in policy:
            statements += [s for s in policy["Statement"] if s.get("Effect") == "Allow"]
        for name, actions in SAM_TEMPLATES.items():
            if name in policy:
                table = policy[name]["TableName"]["Ref"]
                statements.append({"Action": actions, "Targets": {(table, None), (table, "*")}})
    return statements


def allowed(template: dict, call: dict) -> bool:
    action = f"{call['service']}:{call['action']}"
    for statement in grants(template, call["function"]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
            continue
        if call["service"] == "dynamodb":
            table, index = call["resource"].removeprefix(PREFIX), call.get("index")
            targets = statement.get("Targets") or _targets(statement.get("Resource"))
            if (table, index) in targets or (index and (table, "*") in targets):
                return True
        elif call["service"] == "kms":
            equals = (statement.get("Condition") or {}).get("StringEquals") or {}
            if "kms:ViaService" in equals:
                continue  # a direct call is not made through another service
            purposes = equals.get(PURPOSE_KEY)
            if purposes is None or call.get("purpose") in (purposes if isinstance(purposes, list) else [purposes]):
                return True
    return False


@pytest.fixture(scope="module")
def recorded(launch_stack, tmp_path_factory):
    path = tmp_path_factory.mktemp("calls") / "calls.jsonl"
    stack = launch_stack(env={"RIGHTSDESK_LOCAL_RECORD_CALLS": str(path)})
    flow = Flow(stack)
    key = {"Authorization": f"Bearer {stack.demo_api_key}", **JSON}
    # the subject: submit (with an Idempotency-Key, twice), verify, follow, cancel another
    email = flow.new_email("granted")
    body = {"site": "demo", "type": "access", "email": email, "details": "two\nlines"}
    for _ in range(2):
        submitted = stack.post("/v1/requests", json=body, headers={**JSON, "Idempotency-Key": "granted-1"})
        assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["request_id"]
    verified = flow.verify(request_id, flow.code(email))
    assert verified.status_code == 200, verified.text
    token = verified.json()["status_token"]
    assert stack.get(f"/v1/requests/{request_id}", headers={**JSON, "Authorization": f"Bearer {token}"}).ok
    other = flow.submit_and_verify()
    assert stack.post(
        f"/v1/requests/{other['request_id']}/cancel",
        headers={**JSON, "Authorization": f"Bearer {other['status_token']}"},
    ).ok
    for page in ("/v1/policies/privacy", "/v1/unsubscribe?token=x"):
        assert stack.get(page, headers=JSON).status_code < 500
    stack.drain()
    # the controller: list, fetch, report with a reason, rotate its secret, test its webhook
    assert stack.get("/v1/controller/requests", headers=key).ok
    assert stack.get(f"/v1/controller/requests/{request_id}", headers=key).ok
    reported = stack.post(
        f"/v1/controller/requests/{request_id}/status",
        headers=key,
        json={"status": "rejected", "reason": "We hold no data about you."},
    )
    assert reported.ok, reported.text
    assert stack.post("/v1/controller/webhook/rotate", headers=key).ok
    assert stack.post("/v1/controller/webhook/test", headers=key).ok
    # Global Privacy Control: a signal on intake (the dispatcher records it), one forwarded, the statement
    flow.submit_and_verify(headers={"Sec-GPC": "1"})
    assert stack.post("/v1/controller/gpc", headers=key, json={"visitor_id": "granted-visitor-1"}).ok
    assert stack.get("/.well-known/gpc.json", headers=JSON).ok
    stack.drain()
    # the delivery log: list, redeliver one, the endpoint's state, and every failed one since a time
    stack._ok(stack.post("/_dev/webhooks", json={"fail": {"status": 500, "times": 1}}))
    flow.submit_and_verify()
    stack.drain()
    logged = stack.get("/v1/controller/deliveries", headers=key)
    assert logged.ok, logged.text
    forwarded = [a for a in logged.json()["deliveries"] if a["request_id"] == request_id]
    assert stack.post(f"/v1/controller/deliveries/{forwarded[0]['webhook_id']}/redeliver", headers=key).ok
    assert stack.post("/v1/controller/deliveries/redeliver", headers=key, json={"since": "2020-01-01T00:00:00Z"}).ok
    assert stack.get("/v1/controller/webhook", headers=key).ok
    stack.drain()
    # the schedules
    for function in ("RetentionFunction", "DeadlineWatchFunction"):
        stack.run(function)
    stack.drain()
    calls = [json.loads(line) for line in path.read_text().splitlines()]
    yield calls
    stack.stop()


def test_the_paths_were_recorded(recorded):
    functions = {call["function"] for call in recorded}
    assert {
        "PublicApiFunction",
        "ControllerApiFunction",
        "ControllerAuthorizerFunction",
        "DispatcherFunction",
        "NotifierFunction",
    } <= functions, functions
    assert any(call["service"] == "kms" and call["action"] == "Decrypt" for call in recorded), "a webhook was signed"


def test_every_dynamodb_and_direct_kms_call_is_granted_to_its_function(recorded):
    template = read_template(TEMPLATE)
    refused = sorted(
        {
            json.dumps({k: call.get(k) for k in ("function", "service", "action", "resource", "index", "purpose")})
            for call in recorded
            if call["service"] in ("dynamodb", "kms")
            and call["action"] in ({"Encrypt", "Decrypt"} if call["service"] == "kms" else {call["action"]})
            and not allowed(template, call)
        }
    )
    assert not refused, "calls the template does not allow:\n" + "\n".join(refused)


def test_the_check_refuses_an_ungranted_call():
    template = read_template(TEMPLATE)
    assert not allowed(
        template,
        {"function": "PublicApiFunction", "service": "dynamodb", "action": "Scan", "resource": PREFIX + "RightsTable"},
    )
    assert not allowed(
        template,
        {
            "function": "PublicApiFunction",
            "service": "kms",
            "action": "Decrypt",
            "resource": None,
            "purpose": "webhook_secret",
        },
    )
    assert allowed(
        template,
        {
            "function": "DispatcherFunction",
            "service": "kms",
            "action": "Decrypt",
            "resource": None,
            "purpose": "webhook_secret",
        },
    )
