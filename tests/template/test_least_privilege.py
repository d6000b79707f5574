"""Least privilege beyond "no data action on '*'" (test_template.check_iam): no function holds a
table-wide CRUD policy template, and KMS is usable only through our services or for a named purpose,
so the internet-facing PublicApiFunction cannot unseal a webhook secret."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from rightsdesk.connectors import execution, kept_records, s3_index
from rightsdesk.platform import credentials, sealing
from tests.template.test_template import as_list, load_template, props, resources

# Functions allowed a SAM CRUD policy template, each with the reason; none today.
CRUD_JUSTIFIED: dict[str, str] = {}
BROAD_TEMPLATES = ("DynamoDBCrudPolicy", "DynamoDBWritePolicy", "KMSDecryptPolicy", "KMSEncryptPolicy")
# Who may decrypt (and encrypt) what rightsdesk.platform.sealing sealed, by purpose.
UNSEALERS = {
    credentials._SEAL_PURPOSE: {"DispatcherFunction"},
    # The identities a connector run resolved: only the worker that runs its steps reads them.
    execution.SEAL_PURPOSE: {"ConnectorWorkerFunction"},
    # What a record kept for a legal basis needs to be erased later: the worker erases it.
    kept_records.PURPOSE: {"ConnectorWorkerFunction"},
    # The S3 index's object keys: the worker's find through the index opens them.
    s3_index.PURPOSE: {"ConnectorWorkerFunction"},
}
SEALERS = {
    credentials._SEAL_PURPOSE: {"ControllerApiFunction"},
    execution.SEAL_PURPOSE: {"ConnectorWorkerFunction", "OwnRequestsFunction", "ControllerApiFunction"},
    kept_records.PURPOSE: {"ConnectorWorkerFunction"},
    s3_index.PURPOSE: {"S3IndexerFunction"},
}
PURPOSE_KEY = "kms:EncryptionContext:" + next(iter(sealing._context("p", "o")))  # rightsdesk:purpose


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def kms_statements(tpl: dict, function: str, action: str) -> list[dict]:
    found = []
    for policy in as_list(props(tpl["Resources"][function]).get("Policies")):
        for statement in as_list(policy.get("Statement") if isinstance(policy, dict) else None):
            actions = [a.lower() for a in as_list(statement.get("Action"))]
            if statement.get("Effect") == "Allow" and ({action.lower(), "kms:*", "*"} & set(actions)):
                found.append(statement)
    return found


def direct_purposes(statement: dict) -> set[str] | None:
    """The sealed purposes a KMS statement opens to a direct call: None for any purpose, an empty
    set if it works only through another service (kms:ViaService)."""
    conditions = statement.get("Condition") or {}
    equals = {
        key: value
        for operator in ("StringEquals", "ForAllValues:StringEquals")
        for key, value in (conditions.get(operator) or {}).items()
    }
    if "kms:ViaService" in equals:
        return set()
    if PURPOSE_KEY in equals:
        return set(as_list(equals[PURPOSE_KEY]))
    return None


def check_no_broad_templates(tpl: dict) -> list[str]:
    problems = []
    for name, fn in resources(tpl, "AWS::Serverless::Function").items():
        for policy in as_list(props(fn).get("Policies")):
            for broad in BROAD_TEMPLATES:
                if isinstance(policy, dict) and broad in policy and CRUD_JUSTIFIED.get(name) is None:
                    problems.append(f"{name}: {broad} grants more than the function uses; list its actions")
    return problems


def check_kms_bound(tpl: dict) -> list[str]:
    problems = []
    for name in resources(tpl, "AWS::Serverless::Function"):
        for action, allowed in (("kms:Decrypt", UNSEALERS), ("kms:Encrypt", SEALERS)):
            for statement in kms_statements(tpl, name, action):
                purposes = direct_purposes(statement)
                if purposes is None:
                    problems.append(f"{name}: {action} without kms:ViaService or a {PURPOSE_KEY} condition")
                    continue
                for purpose in purposes:
                    if name not in allowed.get(purpose, set()):
                        problems.append(f"{name}: may {action} what was sealed for {purpose!r}")
    return problems


def test_no_function_holds_a_table_wide_crud_policy(template):
    assert check_no_broad_templates(template) == []


def test_kms_is_bound_to_a_service_or_a_purpose(template):
    assert check_kms_bound(template) == []


def test_the_internet_facing_function_cannot_unseal_webhook_secrets(template):
    for statement in kms_statements(template, "PublicApiFunction", "kms:Decrypt"):
        assert direct_purposes(statement) == set(), statement


def test_only_the_dispatcher_unseals_and_only_the_controller_api_seals_webhook_secrets(template):
    purpose = credentials._SEAL_PURPOSE
    for name in resources(template, "AWS::Serverless::Function"):
        unseals = any(purpose in (direct_purposes(s) or set()) for s in kms_statements(template, name, "kms:Decrypt"))
        seals = any(purpose in (direct_purposes(s) or set()) for s in kms_statements(template, name, "kms:Encrypt"))
        assert unseals == (name == "DispatcherFunction"), name
        assert seals == (name == "ControllerApiFunction"), name


def _add(function: str, policy: Any) -> Callable[[dict], None]:
    return lambda tpl: tpl["Resources"][function]["Properties"]["Policies"].append(policy)


def _decrypt(condition: dict | None) -> dict:
    statement = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": {"Fn::GetAtt": ["DataKey", "Arn"]}}
    return {"Statement": [{**statement, **({"Condition": condition} if condition else {})}]}


MUTATIONS = {
    "CRUD policy template": (
        check_no_broad_templates,
        _add("NotifierFunction", {"DynamoDBCrudPolicy": {"TableName": {"Ref": "RightsTable"}}}),
    ),
    "KMSDecryptPolicy": (check_no_broad_templates, _add("PublicApiFunction", {"KMSDecryptPolicy": {"KeyId": "k"}})),
    "unconditioned decrypt": (check_kms_bound, _add("PublicApiFunction", _decrypt(None))),
    "public API unseals": (
        check_kms_bound,
        _add("PublicApiFunction", _decrypt({"StringEquals": {PURPOSE_KEY: credentials._SEAL_PURPOSE}})),
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_checks_catch(template, mutation):
    check, mutate = MUTATIONS[mutation]
    broken = copy.deepcopy(template)
    mutate(broken)
    assert check(broken) != [], json.dumps(mutation)
