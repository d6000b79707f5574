"""The connector runner may assume only the per-connector roles: `sts:AssumeRole` on
arn:aws:iam::<account>:role/rightsdesk-connector-* for the ConnectorAccounts (default: the stack's
own account), in one managed policy the stack exports, and nowhere else in the template."""

from __future__ import annotations

import re

import pytest

from local.intrinsics import Resolver, parameter_values
from local.template import load
from rightsdesk.connectors.definitions import ROLE_NAME_PREFIX
from tests.support.aws import TEMPLATE
from tests.template.test_template import as_list, identity_policy_documents, load_template

OWN_ACCOUNT = "999988887777"


class _NoResources:
    def ref(self, logical_id: str) -> str:
        return f"{logical_id}-ref"

    def get_att(self, logical_id: str, attribute: str) -> str:
        return f"{logical_id}-{attribute}"


def assumable(accounts: str | None) -> list[str]:
    """The ARNs the policy's statement allows, with ConnectorAccounts as CloudFormation passes it."""
    template = load(TEMPLATE)
    overrides = {} if accounts is None else {"ConnectorAccounts": accounts}
    resolver = Resolver(
        template, parameter_values(template, overrides), _NoResources(), region="eu-central-1", account_id=OWN_ACCOUNT
    )
    policy = template.resources["ConnectorAccessPolicy"]["Properties"]["PolicyDocument"]
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow" and as_list(statement["Action"]) == ["sts:AssumeRole"]
    assert "Condition" not in statement and "NotResource" not in statement
    return as_list(resolver.resolve(statement["Resource"]))


@pytest.mark.parametrize(
    ("accounts", "expected"),
    [
        (None, [OWN_ACCOUNT]),  # the default: the stack's own account
        ("111122223333", ["111122223333"]),
        ("111122223333,444455556666", ["111122223333", "444455556666"]),
    ],
    ids=["default-own-account", "one-account", "two-accounts"],
)
def test_only_connector_roles_in_the_given_accounts_are_assumable(accounts, expected):
    assert assumable(accounts) == [f"arn:aws:iam::{a}:role/{ROLE_NAME_PREFIX}*" for a in expected]


def test_the_account_parameter_takes_account_ids_only():
    spec = load_template()["Parameters"]["ConnectorAccounts"]
    pattern = re.compile(spec["AllowedPattern"])
    assert spec["Type"] == "CommaDelimitedList"
    for good in ("111122223333", ""):
        assert pattern.fullmatch(good)
    for bad in ("*", "1111222233*", "11112222333", "arn:aws:iam::111122223333:root"):
        assert not pattern.fullmatch(bad), bad


def test_the_policy_is_exported_for_the_roles_that_run_connectors():
    template = load_template()
    assert template["Resources"]["ConnectorAccessPolicy"]["Type"] == "AWS::IAM::ManagedPolicy"
    assert template["Outputs"]["ConnectorAccessPolicyArn"]["Value"] == {"Ref": "ConnectorAccessPolicy"}


def test_no_other_policy_in_the_template_allows_assuming_a_role():
    granting = []
    for where, document in identity_policy_documents(load_template()):
        for statement in as_list(document.get("Statement")):
            actions = [a.lower() for a in as_list(statement.get("Action")) if isinstance(a, str)]
            if statement.get("Effect") == "Allow" and {"sts:assumerole", "sts:*", "*"} & set(actions):
                granting.append(where)
    assert granting == ["ConnectorAccessPolicy.PolicyDocument"]
