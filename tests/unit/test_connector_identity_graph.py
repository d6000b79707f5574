"""The identity graph: ordering from needs and yields (table-driven), definition errors, ambiguity
parking, unavailable identities, and a whole run across Cognito, DynamoDB and S3 in moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rightsdesk.connectors import build
from rightsdesk.connectors.base import Connector, Erased, Found, Located
from rightsdesk.connectors.definitions import DefinitionError, parse_definition
from rightsdesk.connectors.identity_graph import carry_out, order, resolve

SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:product-hook"


def declared(connector_id: str, needs: list[str], yields: list[str] = (), **extra: Any):
    return parse_definition(
        {
            "kind": "http",
            "id": connector_id,
            "url": "https://product.example/rightsdesk",
            "needs": needs,
            "yields": {kind: kind for kind in yields},
            "signing_secret_arn": SECRET_ARN,
            "enabled": True,
            **extra,
        }
    )


GRAPHS = [
    ("one source", [("pool", ["email"], ["cognito_sub"])], {"email"}, [["pool"]]),
    (
        "a chain with independent branches",
        [
            ("pool", ["email"], ["cognito_sub"]),
            ("users", ["cognito_sub"], ["user_id", "account_id"]),
            ("billing", ["account_id"], []),
            ("files", ["user_id"], []),
            ("newsletter", ["email"], []),
        ],
        {"email"},
        [["newsletter", "pool"], ["users"], ["billing", "files"]],
    ),
    (
        "two yielders of one kind both run first",
        [("con-a", ["email"], ["user_id"]), ("con-b", ["email"], ["user_id"]), ("con-c", ["user_id"], [])],
        {"email"},
        [["con-a", "con-b"], ["con-c"]],
    ),
    (
        "a seed needs no yielder",
        [("tenant-files", ["tenant_id", "user_id"], []), ("ids", ["email"], ["user_id"])],
        {"email", "tenant_id"},
        [["ids"], ["tenant-files"]],
    ),
    (
        "a yield of a seed kind does not hold back its consumers",
        [("con-a", ["email"], ["user_id"]), ("con-b", ["user_id"], ["email"])],
        {"email"},
        [["con-a"], ["con-b"]],
    ),
]


@pytest.mark.parametrize(("graph", "seeds", "stages"), [g[1:] for g in GRAPHS], ids=[g[0] for g in GRAPHS])
def test_connectors_run_in_the_order_their_needs_and_yields_dictate(graph, seeds, stages):
    plan = order([declared(*node) for node in graph], seeds)
    assert [list(stage) for stage in plan.stages] == stages
    position = {connector_id: n for n, stage in enumerate(plan.stages) for connector_id in stage}
    for connector_id, needs, _ in graph:
        for other_id, _, yields in graph:
            if set(needs) & set(yields) - seeds:
                assert position[other_id] < position[connector_id]


@pytest.mark.parametrize(
    ("graph", "field"),
    [
        ([("files", ["user_id"], [])], "files.needs"),
        ([("con-a", ["user_id"], ["account_id"]), ("con-b", ["account_id"], ["user_id"])], "cycle"),
        ([("con-a", ["email"], ["x"]), ("con-b", ["x", "y"], ["z"]), ("con-c", ["z"], ["y"])], "cycle"),
        ([("self", ["user_id"], ["user_id"])], "cycle"),
        ([("same", ["email"], []), ("same", ["email"], [])], "id"),
    ],
    ids=["unsatisfiable need", "two-connector cycle", "cycle behind a source", "self cycle", "duplicate id"],
)
def test_definitions_that_cannot_run_are_refused_before_anything_runs(graph, field):
    with pytest.raises(DefinitionError) as error:
        order([declared(*node) for node in graph])
    assert field in error.value.fields


class Stub(Connector):
    """A connector over a dict: identity value -> records (each a dict of attributes)."""

    kind = "stub"

    def __init__(self, definition, data: dict[str, list[dict]], fail: bool = False):
        super().__init__(definition)
        self.data = data
        self.fail = fail
        self.erased: list[str] = []
        self.finds: list[dict] = []

    def find(self, identities):
        self.finds.append(dict(identities))
        if self.fail:
            raise RuntimeError("store down")
        need = sorted(self.needs)[0]
        records = [Located(key=f"{need}/{n}", data=row) for n, row in enumerate(self.data.get(identities[need], []))]
        return self._found(identities, records)

    def export(self, found: Found):
        return [dict(r.data or {}) for r in found.records]

    def erase(self, found: Found):
        self.erased.append(self.id)
        self.data.pop(found.identities[sorted(self.needs)[0]], None)
        return Erased(erased=found.count)


def chain(pool_rows: list[dict], users_fail: bool = False):
    pool = Stub(declared("pool", ["email"], ["cognito_sub"]), {"ada@example.com": pool_rows})
    users = Stub(declared("users", ["cognito_sub"], ["user_id"]), {"sub-1": [{"user_id": "u-1"}]}, fail=users_fail)
    files = Stub(declared("files", ["user_id"]), {"u-1": [{"f": 1}, {"f": 2}]})
    return pool, users, files


def test_identities_flow_through_the_graph_and_erasure_runs_dependents_first():
    pool, users, files = chain([{"cognito_sub": "sub-1"}])
    resolution, outcomes = carry_out([files, users, pool], {"email": "ada@example.com"})
    assert resolution.identities == {"email": "ada@example.com", "cognito_sub": "sub-1", "user_id": "u-1"}
    assert [o.connector_id for o in outcomes] == ["files", "users", "pool"]
    assert [(o.result, o.found, o.remaining) for o in outcomes] == [("done", 2, 0), ("done", 1, 0), ("done", 1, 0)]
    assert files.finds[0] == {"user_id": "u-1"}  # a connector is given the identities it needs only


def test_two_users_for_one_email_park_everything_and_erase_nothing():
    pool, users, files = chain([{"cognito_sub": "sub-1"}, {"cognito_sub": "sub-2"}])
    resolution, outcomes = carry_out([pool, users, files], {"email": "ada@example.com"})
    assert resolution.parked and resolution.ambiguous == ["cognito_sub"]
    assert [o.result for o in outcomes] == ["parked_ambiguous"]
    assert pool.erased == users.erased == files.erased == [] and users.finds == []


def test_a_yield_that_contradicts_a_seed_is_ambiguous():
    ids = Stub(declared("ids", ["email"], ["user_id"]), {"ada@example.com": [{"user_id": "u-9"}]})
    resolution = resolve([ids], {"email": "ada@example.com", "user_id": "u-1"})
    assert resolution.ambiguous == ["user_id"]


def test_no_user_means_nothing_found_downstream_and_a_failed_source_fails_its_dependents():
    pool, users, files = chain([])
    _, outcomes = carry_out([pool, users, files], {"email": "ada@example.com"})
    assert [(o.connector_id, o.result) for o in outcomes] == [
        ("files", "nothing_found"),
        ("users", "nothing_found"),
        ("pool", "nothing_found"),
    ]
    pool, users, files = chain([{"cognito_sub": "sub-1"}], users_fail=True)
    _, outcomes = carry_out([pool, users, files], {"email": "ada@example.com"})
    results = {o.connector_id: (o.result, (o.failure or {}).get("code")) for o in outcomes}
    assert results == {
        "pool": ("done", None),
        "users": ("failed", "RuntimeError"),
        "files": ("failed", "identity_unavailable"),
    }


def test_a_dry_run_plans_every_connector_and_erases_nothing():
    pool, users, files = chain([{"cognito_sub": "sub-1"}])
    _, outcomes = carry_out([pool, users, files], {"email": "ada@example.com"}, dry_run=True)
    assert [(o.connector_id, o.action, o.dry_run, o.found) for o in outcomes] == [
        ("pool", "find", True, 1),
        ("users", "find", True, 1),
        ("files", "find", True, 2),
    ]
    assert pool.erased == users.erased == files.erased == []


# ------------------------------------------------------------------ the worked example, in moto

ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-{}"


@pytest.fixture
def product():
    with mock_aws():
        region = "eu-central-1"
        cognito = boto3.client("cognito-idp", region_name=region)
        pool_id = cognito.create_user_pool(PoolName="users")["UserPool"]["Id"]
        dynamodb = boto3.client("dynamodb", region_name=region)
        dynamodb.create_table(
            TableName="Users",
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "user_id", "AttributeType": "S"},
                {"AttributeName": "sub", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-sub",
                    "KeySchema": [{"AttributeName": "sub", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(Bucket="transcripts", CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_bucket_versioning(Bucket="transcripts", VersioningConfiguration={"Status": "Enabled"})
        yield cognito, pool_id, dynamodb, s3


def subject(cognito, pool_id, dynamodb, s3, username: str, email: str, user_id: str) -> None:
    user = cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "email", "Value": email}],
        MessageAction="SUPPRESS",
    )
    sub = next(a["Value"] for a in user["User"]["Attributes"] if a["Name"] == "sub")
    dynamodb.put_item(TableName="Users", Item={"user_id": {"S": user_id}, "sub": {"S": sub}, "name": {"S": username}})
    s3.put_object(Bucket="transcripts", Key=f"users/{user_id}/chat.jsonl", Body=json.dumps({"text": "hello"}).encode())


def connectors(pool_id: str) -> list:
    definitions = [
        {
            "kind": "cognito",
            "id": "users-pool",
            "role_arn": ROLE.format("pool"),
            "enabled": True,
            "user_pool_id": pool_id,
        },
        {
            "kind": "dynamodb",
            "id": "users-table",
            "role_arn": ROLE.format("users"),
            "enabled": True,
            "table_name": "Users",
            "partition_key": "user_id",
            "lookup": {"identity": "cognito_sub", "attribute": "sub", "index_name": "by-sub"},
            "yields": {"user_id": "user_id"},
        },
        {
            "kind": "s3",
            "id": "transcripts",
            "role_arn": ROLE.format("transcripts"),
            "enabled": True,
            "bucket": "transcripts",
            "subject_prefixes": ["users/{user_id}/"],
        },
    ]
    return [build(parse_definition(d), "req_graph_1") for d in definitions]  # the default: sts:AssumeRole


def test_an_erasure_across_cognito_dynamodb_and_s3_is_verified_everywhere(product):
    cognito, pool_id, dynamodb, s3 = product
    # A user name no hex digest can contain: the outcomes hold keyed hashes, and "ada" alone appeared
    # inside one by chance.
    subject(cognito, pool_id, dynamodb, s3, "ada-lovelace", "ada@example.com", "u-1")
    subject(cognito, pool_id, dynamodb, s3, "bob", "bob@example.com", "u-2")
    _, plan = carry_out(connectors(pool_id), {"email": "ada@example.com"}, dry_run=True)
    assert [(o.connector_id, o.found) for o in plan] == [("users-pool", 1), ("users-table", 1), ("transcripts", 1)]
    resolution, outcomes = carry_out(connectors(pool_id), {"email": "ada@example.com"})
    assert [(o.connector_id, o.result, o.remaining) for o in outcomes] == [
        ("transcripts", "done", 0),
        ("users-table", "done", 0),
        ("users-pool", "done", 0),
    ]
    assert cognito.list_users(UserPoolId=pool_id, Filter='email = "bob@example.com"')["Users"]
    assert "Item" in dynamodb.get_item(TableName="Users", Key={"user_id": {"S": "u-2"}})
    assert s3.list_objects_v2(Bucket="transcripts", Prefix="users/u-2/")["KeyCount"] == 1
    stored = json.dumps([o.to_dict() for o in outcomes])
    for secret in ("ada@example.com", "u-1", resolution.identities["cognito_sub"], "ada-lovelace"):
        assert secret not in stored


def test_two_pool_users_for_one_address_leave_every_store_untouched(product):
    cognito, pool_id, dynamodb, s3 = product
    # A user name no hex digest can contain: the outcomes hold keyed hashes, and "ada" alone appeared
    # inside one by chance.
    subject(cognito, pool_id, dynamodb, s3, "ada-lovelace", "ada@example.com", "u-1")
    subject(cognito, pool_id, dynamodb, s3, "ada-2", "ada@example.com", "u-3")
    resolution, outcomes = carry_out(connectors(pool_id), {"email": "ada@example.com"})
    assert resolution.ambiguous == ["cognito_sub"]
    assert [(o.connector_id, o.result, o.erased) for o in outcomes] == [("users-pool", "parked_ambiguous", 0)]
    assert len(cognito.list_users(UserPoolId=pool_id)["Users"]) == 2
    assert dynamodb.scan(TableName="Users")["Count"] == 2
