"""The Cognito connector against moto: find by email, yields, both erase modes, idempotence,
two users for one address parked, outcomes without personal data."""

from __future__ import annotations

import re

import boto3
import pytest
from moto import mock_aws

from rightsdesk.connectors import base, build
from rightsdesk.connectors.access import assumed_role_session
from rightsdesk.connectors.definitions import parse_definition
from tests.support.denied import deny

ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-users-pool"


@pytest.fixture
def pool():
    with mock_aws():
        client = boto3.client("cognito-idp", region_name="eu-central-1")
        pool_id = client.create_user_pool(
            PoolName="product-users",
            Schema=[{"Name": "user_id", "AttributeDataType": "String", "Mutable": True}],
        )["UserPool"]["Id"]
        yield client, pool_id


def add_user(client, pool_id: str, username: str, email: str, user_id: str | None = None, **extra: str) -> str:
    attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
    if user_id:
        attributes.append({"Name": "custom:user_id", "Value": user_id})
    attributes += [{"Name": name, "Value": value} for name, value in extra.items()]
    user = client.admin_create_user(
        UserPoolId=pool_id, Username=username, UserAttributes=attributes, MessageAction="SUPPRESS"
    )
    return next(a["Value"] for a in user["User"]["Attributes"] if a["Name"] == "sub")


def connector(pool_id: str, **overrides):
    document = {
        "kind": "cognito",
        "id": "users-pool",
        "role_arn": ROLE,
        "enabled": True,
        "user_pool_id": pool_id,
        "yields": {"cognito_sub": "sub", "user_id": "custom:user_id"},
    }
    document.update(overrides)
    return build(parse_definition(document), "req_cognito_1", session_factory=assumed_role_session)


def attributes(client, pool_id: str, username: str) -> dict[str, str]:
    user = client.admin_get_user(UserPoolId=pool_id, Username=username)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]} | {"_enabled": str(user["Enabled"])}


def test_find_by_email_yields_the_sub_and_the_configured_attribute(pool):
    client, pool_id = pool
    sub = add_user(client, pool_id, "ada", "ada@example.com", user_id="u-1", name="Ada")
    add_user(client, pool_id, "bob", "bob@example.com", user_id="u-2")
    subject = connector(pool_id)
    found = subject.find({"email": "Ada@Example.com"})
    assert found.count == 1
    assert found.derived == {"cognito_sub": (sub,), "user_id": ("u-1",)}
    exported = subject.export(found)[0]
    assert (exported["username"], exported["name"], exported["email"]) == ("ada", "Ada", "ada@example.com")


def test_delete_then_verify_finds_nothing_and_a_second_run_is_harmless(pool):
    client, pool_id = pool
    add_user(client, pool_id, "ada", "ada@example.com", user_id="u-1")
    add_user(client, pool_id, "bob", "bob@example.com", user_id="u-2")
    subject = connector(pool_id)
    found = subject.find({"email": "ada@example.com"})
    outcome = base.erase_and_verify(subject, {"email": "ada@example.com"}, found)
    assert (outcome.result, outcome.erased, outcome.remaining) == ("done", 1, 0)
    assert subject.erase(found).already_gone == 1
    assert base.erase_and_verify(subject, {"email": "ada@example.com"}).result == "nothing_found"
    assert attributes(client, pool_id, "bob")["email"] == "bob@example.com"


def test_disable_and_scrub_leaves_a_disabled_user_that_names_no_one(pool):
    client, pool_id = pool
    sub = add_user(
        client, pool_id, "ada", "ada@example.com", user_id="u-1", name="Ada Lovelace", phone_number="+38640123456"
    )
    subject = connector(pool_id, erase_mode="disable_and_scrub")
    outcome = base.erase_and_verify(subject, {"email": "ada@example.com"})
    assert (outcome.result, outcome.erased, outcome.remaining) == ("done", 1, 0)
    left = attributes(client, pool_id, "ada")
    assert left["_enabled"] == "False"
    # Names no one: a keyed hash's hex and the placeholder domain, nothing else ("ada" could turn up
    # inside the hex by chance, so the shape is what is checked).
    assert re.fullmatch(r"erased-[0-9a-f]{24}@erased\.invalid", left["email"]), left["email"]
    assert "name" not in left and "phone_number" not in left
    assert left["sub"] == sub  # kept: other stores' records were found through it
    again = base.erase_and_verify(subject, {"email": "ada@example.com"})
    assert (again.result, again.remaining) == ("nothing_found", 0)


def test_a_pool_whose_user_names_are_addresses_cannot_be_scrubbed(pool):
    client, pool_id = pool
    add_user(client, pool_id, "ada@example.com", "ada@example.com")
    outcome = base.erase_and_verify(connector(pool_id, erase_mode="disable_and_scrub"), {"email": "ada@example.com"})
    assert (outcome.result, outcome.failure["code"]) == ("failed", "username_is_personal")
    assert attributes(client, pool_id, "ada@example.com")["_enabled"] == "True"


def test_two_users_for_one_address_park_and_nothing_is_erased(pool):
    client, pool_id = pool
    add_user(client, pool_id, "ada", "ada@example.com")
    add_user(client, pool_id, "ada2", "ada@example.com")
    subject = connector(pool_id)
    outcome = base.erase_and_verify(subject, {"email": "ada@example.com"})
    assert (outcome.result, outcome.found, outcome.erased) == ("parked_ambiguous", 2, 0)
    assert subject.find({"email": "ada@example.com"}).count == 2


def test_a_user_whose_address_changed_since_the_find_is_left_alone(pool):
    client, pool_id = pool
    add_user(client, pool_id, "ada", "ada@example.com")
    subject = connector(pool_id)
    found = subject.find({"email": "ada@example.com"})
    client.admin_update_user_attributes(
        UserPoolId=pool_id, Username="ada", UserAttributes=[{"Name": "email", "Value": "new@example.com"}]
    )
    assert subject.erase(found).changed_hands == 1
    assert attributes(client, pool_id, "ada")["email"] == "new@example.com"


def test_the_outcome_holds_no_address_user_name_or_sub(pool):
    client, pool_id = pool
    sub = add_user(client, pool_id, "ada-lovelace", "ada@example.com", user_id="u-1")
    outcome = base.erase_and_verify(connector(pool_id), {"email": "ada@example.com", "cognito_sub": sub})
    text = outcome.to_json()
    for secret in ("ada@example.com", "ada-lovelace", sub, "u-1"):
        assert secret not in text
    assert len(outcome.touched) == 1 and outcome.role_arn == ROLE


def test_a_probe_proves_each_permission_and_changes_nothing(pool):
    client, pool_id = pool
    add_user(client, pool_id, "ada", "ada@example.com")
    for mode, write in (
        ("delete", "cognito-idp:AdminDeleteUser"),
        ("disable_and_scrub", "cognito-idp:AdminDisableUser"),
    ):
        subject = connector(pool_id, erase_mode=mode)
        assert [(c.operation, c.result) for c in subject.probe()] == [
            ("cognito-idp:ListUsers", "allowed"),
            ("cognito-idp:AdminGetUser", "allowed"),
            (write, "allowed"),
        ]
    assert attributes(client, pool_id, "ada")["_enabled"] == "True"
    deny(subject.client, "ListUsers")
    assert subject.probe()[0] == base.Check("cognito-idp:ListUsers", "denied", "AccessDeniedException")
