"""The receipt signing key: an ECC_NIST_P256 SIGN_VERIFY key whose kms:Sign is granted by its key
policy to the named signers only (none yet), whose public key auditors can read, and whose ARN is an
output. Neither an IAM policy in the template nor a grant can add a signer."""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable

import pytest

from rightsdesk.connectors import receipts
from tests.template.test_template import append, as_list, identity_policy_documents, load_template, props

KEY = "ReceiptSigningKey"
# Principals (logical ids of roles or functions) the key policy may let sign, each with its reason.
RECEIPT_SIGNERS: dict[str, str] = {
    "ConnectorWorkerFunctionRole": "records each connector's outcome and seals the receipt (rightsdesk.connectors.execution)",
    "ConnectorCallbackFunctionRole": "records the outcome an HTTP connector's product reports later (rightsdesk.connectors.callbacks)",
}
# Actions that sign, or hand signing on (a grant).
SIGNING_ACTIONS = ("kms:sign", "kms:creategrant")


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def grants(statement: dict, action: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        return True  # allows everything it does not name
    return any(fnmatch.fnmatchcase(action, str(pattern).lower()) for pattern in as_list(statement.get("Action")))


def key_statements(tpl: dict) -> list[dict]:
    return as_list(props(tpl["Resources"][KEY]).get("KeyPolicy", {}).get("Statement"))


def check_key(tpl: dict) -> list[str]:
    problems = []
    key = tpl["Resources"].get(KEY)
    if key is None:
        return [f"no {KEY}"]
    p = props(key)
    if (p.get("KeySpec"), p.get("KeyUsage")) != (receipts.KEY_SPEC, "SIGN_VERIFY"):
        problems.append(
            f"{KEY} is {p.get('KeySpec')}/{p.get('KeyUsage')}, receipts need {receipts.KEY_SPEC}/SIGN_VERIFY"
        )
    if key.get("DeletionPolicy") != "Retain":
        problems.append(f"{KEY} goes with the stack: receipts signed with it could no longer be checked against KMS")
    if not any(grants(s, "kms:getpublickey") for s in key_statements(tpl)):
        problems.append(f"{KEY}: no one may read the public key")
    outputs = tpl.get("Outputs", {})
    if outputs.get("ReceiptSigningKeyArn", {}).get("Value") != {"Fn::GetAtt": [KEY, "Arn"]}:
        problems.append("no ReceiptSigningKeyArn output")
    return problems


def check_signers(tpl: dict) -> list[str]:
    """Who may sign: only RECEIPT_SIGNERS, and only through the key policy."""
    problems = []
    for i, statement in enumerate(key_statements(tpl)):
        for action in SIGNING_ACTIONS:
            if grants(statement, action):
                principals = statement.get("Principal")
                named = {str(r) for r in as_list(principals.get("AWS"))} if isinstance(principals, dict) else {"*"}
                strangers = [n for n in named if not any(signer in n for signer in RECEIPT_SIGNERS)]
                if strangers or not named:
                    problems.append(f"{KEY} policy statement {i}: {action} for {sorted(strangers)}")
    # An identity policy can add a signer only where the key policy delegates kms:Sign to the
    # account; it does not, but a statement that tries is a mistake waiting for that to change.
    for where, document in identity_policy_documents(tpl):
        for statement in as_list(document.get("Statement")):
            for action in SIGNING_ACTIONS:
                if grants(statement, action):
                    problems.append(f"{where}: grants {action}")
    for name, resource in tpl["Resources"].items():
        if resource.get("Type") == "AWS::KMS::Grant":
            problems.append(f"{name}: a KMS grant")
    return problems


def test_the_receipt_key_signs_ecdsa_p256_is_kept_and_readable(template):
    assert check_key(template) == []


def test_no_one_may_sign_receipts_but_the_named_signers(template):
    assert check_signers(template) == []


def _statement(action: str, principal: object) -> dict:
    return {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"}


def _function_policy(action: str) -> Callable[[dict], None]:
    statement = {"Effect": "Allow", "Action": action, "Resource": {"Fn::GetAtt": [KEY, "Arn"]}}
    return append("Resources.NotifierFunction.Properties.Policies", {"Statement": [statement]})


KEY_POLICY = f"Resources.{KEY}.Properties.KeyPolicy.Statement"
ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}

MUTATIONS: dict[str, tuple[Callable[[dict], list[str]], Callable[[dict], None]]] = {
    "account may sign": (check_signers, append(KEY_POLICY, _statement("kms:Sign", ROOT))),
    "account holds kms:*": (check_signers, append(KEY_POLICY, _statement("kms:*", ROOT))),
    "account may grant": (check_signers, append(KEY_POLICY, _statement("kms:Create*", ROOT))),
    "anyone may sign": (check_signers, append(KEY_POLICY, {**_statement("kms:Sign", "*"), "Principal": "*"})),
    "a function signs by IAM": (check_signers, _function_policy("kms:Sign")),
    "a function signs by wildcard": (check_signers, _function_policy("kms:S*")),
    "a symmetric key": (check_key, lambda tpl: tpl["Resources"][KEY]["Properties"].pop("KeySpec")),
    "no public key for auditors": (
        check_key,
        lambda tpl: tpl["Resources"][KEY]["Properties"]["KeyPolicy"].update(
            Statement=[s for s in key_statements(tpl) if not grants(s, "kms:getpublickey")]
        ),
    ),
    "key deleted with the stack": (check_key, lambda tpl: tpl["Resources"][KEY].pop("DeletionPolicy")),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_the_checks_catch(template, mutation):
    check, mutate = MUTATIONS[mutation]
    broken = copy.deepcopy(template)
    mutate(broken)
    assert check(broken) != []
