"""Rectification through connectors: the `rectifiable` declarations, each kind's conditional and
idempotent write (DynamoDB and Cognito against moto in-process, HTTP against a stub product that
checks the signature), the run rule `rectify_and_verify` (re-read, counts only, parking, dry), and
the receipt's `rectify` entries verifying offline beside erasure entries that read as before."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from moto import mock_aws
from standardwebhooks.webhooks import Webhook

from rightsdesk.connectors import base, build, receipts
from rightsdesk.connectors.access import assumed_role_session
from rightsdesk.connectors.definitions import DefinitionError, parse_definition
from rightsdesk.kernel import clock

ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-users"
SECRET = "whsec_" + base64.b64encode(b"r" * 32).decode()
SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:product-hook"
OLD_NAME, NEW_NAME = "Ada Lovelase", "Ada Lovelace"


# ------------------------------------------------------------------ declarations


def dynamodb_document(**overrides) -> dict:
    document = {
        "kind": "dynamodb",
        "id": "users-table",
        "role_arn": ROLE,
        "enabled": True,
        "table_name": "Users",
        "partition_key": "pk",
        "sort_key": "sk",
        "lookup": {"identity": "user_id", "attribute": "owner", "index_name": "by-owner"},
        "rectifiable": {"name": "display_name", "locale": "lang"},
    }
    document.update(overrides)
    return document


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (dynamodb_document(rectifiable={"name": "pk"}), "definition"),
        (dynamodb_document(rectifiable={"name": "owner"}), "definition"),
        (dynamodb_document(rectifiable={"name": "account"}, yields={"account_id": "account"}), "definition"),
        (dynamodb_document(rectifiable={"Bad Field": "x"}), "rectifiable.Bad Field.[key]"),
        (
            {
                "kind": "cognito",
                "id": "pool",
                "role_arn": ROLE,
                "user_pool_id": "eu-central-1_abc",
                "rectifiable": {"email": "email"},
            },
            "rectifiable",
        ),
        (
            {
                "kind": "s3",
                "id": "transcripts",
                "role_arn": ROLE,
                "bucket": "chat-transcripts",
                "subject_prefixes": ["users/{user_id}/"],
                "rectifiable": {"name": "name"},
            },
            "definition",
        ),
    ],
)
def test_a_correction_never_rewrites_keys_identities_or_s3_objects(document, field):
    with pytest.raises(DefinitionError) as refused:
        parse_definition(document)
    assert field in refused.value.fields, refused.value.fields
    assert "rectifiable" in json.dumps(refused.value.fields) or field != "definition"


def test_declared_fields_round_trip_through_the_stored_form():
    definition = parse_definition(dynamodb_document())
    assert parse_definition(definition.to_dict()).rectifiable == {"name": "display_name", "locale": "lang"}


# ------------------------------------------------------------------ DynamoDB


@pytest.fixture
def table():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        client.create_table(
            TableName="Users",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-owner",
                    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for n, owner in enumerate(("u-1", "u-1", "u-2")):
            item = {"pk": {"S": f"USER#{n}"}, "sk": {"S": "profile"}, "owner": {"S": owner}}
            item["display_name"] = {"S": OLD_NAME if owner == "u-1" else "Bob"}
            client.put_item(TableName="Users", Item=item)
        yield client


def names(client) -> dict[str, str]:
    items = client.scan(TableName="Users")["Items"]
    return {item["pk"]["S"]: item["display_name"]["S"] for item in items}


def dynamodb_connector(**overrides):
    return build(parse_definition(dynamodb_document(**overrides)), "req_rect_1", session_factory=assumed_role_session)


def test_dynamodb_sets_the_declared_attribute_on_the_subjects_items_only_and_reads_it_back(table):
    connector = dynamodb_connector()
    outcome = base.rectify_and_verify(connector, {"user_id": "u-1"}, {"name": NEW_NAME})
    assert (outcome.action, outcome.result, outcome.found, outcome.rectified, outcome.remaining) == (
        "rectify",
        "done",
        2,
        2,
        0,
    )
    assert names(table) == {"USER#0": NEW_NAME, "USER#1": NEW_NAME, "USER#2": "Bob"}
    text = outcome.to_json()
    for value in (NEW_NAME, OLD_NAME, "u-1", "USER#0", "display_name"):
        assert value not in text


def test_dynamodb_a_second_run_changes_nothing_more(table):
    connector = dynamodb_connector()
    base.rectify_and_verify(connector, {"user_id": "u-1"}, {"name": NEW_NAME})
    found = connector.find_to_rectify({"user_id": "u-1"})
    again = connector.rectify(found, {"display_name": NEW_NAME})
    assert (again.rectified, again.unchanged) == (0, 2)
    outcome = base.rectify_and_verify(connector, {"user_id": "u-1"}, {"name": NEW_NAME})
    assert (outcome.result, outcome.rectified, outcome.remaining) == ("done", 0, 0)


def test_dynamodb_an_item_that_changed_hands_since_the_find_is_left_alone(table):
    connector = dynamodb_connector()
    found = connector.find_to_rectify({"user_id": "u-1"})
    table.update_item(
        TableName="Users",
        Key={"pk": {"S": "USER#1"}, "sk": {"S": "profile"}},
        UpdateExpression="SET #o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": "u-9"}},
    )
    done = connector.rectify(found, {"display_name": NEW_NAME})
    assert (done.rectified, done.changed_hands) == (1, 1)
    assert names(table)["USER#1"] == OLD_NAME


def test_dynamodb_a_field_it_does_not_declare_is_nothing_to_do(table):
    outcome = base.rectify_and_verify(dynamodb_connector(), {"user_id": "u-1"}, {"nickname": "Countess"})
    assert (outcome.result, outcome.found, outcome.rectified) == ("nothing_found", 0, 0)
    assert names(table)["USER#0"] == OLD_NAME


def test_a_connector_not_yet_enabled_only_plans_and_writes_nothing(table):
    outcome = base.rectify_and_verify(dynamodb_connector(enabled=False), {"user_id": "u-1"}, {"name": NEW_NAME})
    assert outcome.dry_run and outcome.found == 2
    assert names(table)["USER#0"] == OLD_NAME


def test_more_items_than_the_ceiling_park_before_anything_is_written(table):
    outcome = base.rectify_and_verify(dynamodb_connector(ceiling=1), {"user_id": "u-1"}, {"name": NEW_NAME})
    assert outcome.result == "parked_too_many"
    assert names(table)["USER#0"] == OLD_NAME


# ------------------------------------------------------------------ Cognito


@pytest.fixture
def pool():
    with mock_aws():
        client = boto3.client("cognito-idp", region_name="eu-central-1")
        pool_id = client.create_user_pool(
            PoolName="product-users",
            Schema=[{"Name": "plan_name", "AttributeDataType": "String", "Mutable": True}],
        )["UserPool"]["Id"]
        for username, email, name in (("ada", "ada@example.com", OLD_NAME), ("bob", "bob@example.com", "Bob")):
            client.admin_create_user(
                UserPoolId=pool_id,
                Username=username,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "name", "Value": name},
                    {"Name": "locale", "Value": "en"},
                ],
                MessageAction="SUPPRESS",
            )
        yield client, pool_id


def cognito_connector(pool_id: str):
    document = {
        "kind": "cognito",
        "id": "users-pool",
        "role_arn": ROLE,
        "enabled": True,
        "user_pool_id": pool_id,
        "rectifiable": {"name": "name", "locale": "locale", "plan": "custom:plan_name"},
    }
    return build(parse_definition(document), "req_rect_2", session_factory=assumed_role_session)


def user(client, pool_id: str, username: str) -> dict[str, str]:
    answer = client.admin_get_user(UserPoolId=pool_id, Username=username)
    return {a["Name"]: a["Value"] for a in answer["UserAttributes"]}


def test_cognito_sets_the_declared_user_attributes_and_a_second_run_changes_nothing(pool):
    client, pool_id = pool
    connector = cognito_connector(pool_id)
    changes = {"name": NEW_NAME, "locale": "de", "plan": "team"}
    outcome = base.rectify_and_verify(connector, {"email": "ada@example.com"}, changes)
    assert (outcome.result, outcome.rectified, outcome.remaining) == ("done", 1, 0)
    ada = user(client, pool_id, "ada")
    assert (ada["name"], ada["locale"], ada["custom:plan_name"], ada["email"]) == (
        NEW_NAME,
        "de",
        "team",
        "ada@example.com",
    )
    assert user(client, pool_id, "bob")["name"] == "Bob"
    again = base.rectify_and_verify(connector, {"email": "ada@example.com"}, changes)
    assert (again.result, again.rectified, again.remaining) == ("done", 0, 0)
    assert NEW_NAME not in outcome.to_json() and "ada@example.com" not in outcome.to_json()


def test_cognito_leaves_a_user_whose_address_changed_meanwhile(pool):
    client, pool_id = pool
    connector = cognito_connector(pool_id)
    found = connector.find_to_rectify({"email": "ada@example.com"})
    client.admin_update_user_attributes(
        UserPoolId=pool_id, Username="ada", UserAttributes=[{"Name": "email", "Value": "other@example.com"}]
    )
    done = connector.rectify(found, {"name": NEW_NAME})
    assert (done.rectified, done.changed_hands) == (0, 1)
    assert user(client, pool_id, "ada")["name"] == OLD_NAME


# ------------------------------------------------------------------ HTTP


class Product:
    def __init__(self) -> None:
        self.profiles = {"ada@example.com": {"full_name": OLD_NAME}}
        self.asked: list[dict] = []

    def handle(self, data: dict) -> dict:
        self.asked.append(data)
        profile = self.profiles.get(data["identities"]["email"])
        if data["action"] == "find":
            return {"count": 1 if profile else 0}
        if data["action"] == "rectify":
            changed = profile is not None and any(profile.get(k) != v for k, v in data["changes"].items())
            if profile is not None:
                profile.update(data["changes"])
            return {"rectified": 1 if changed else 0}
        if data["action"] == "verify" and "changes" in data:
            held = profile is None or all(profile.get(k) == v for k, v in data["changes"].items())
            return {"remaining": 0 if held else 1}
        return {"remaining": 1 if profile else 0}


@pytest.fixture
def product() -> Iterator[tuple[Product, str]]:
    state = Product()
    verifier = Webhook(SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            try:
                payload = verifier.verify(body, dict(self.headers))
            except Exception:
                self.send_response(401)
                self.end_headers()
                return
            answer = json.dumps(state.handle(payload["data"])).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/rightsdesk"
    server.shutdown()
    server.server_close()


def test_http_the_product_receives_the_corrections_signed_under_its_own_names_and_confirms_them(product):
    state, url = product
    document = {
        "kind": "http",
        "id": "billing-api",
        "url": url,
        "needs": ["email"],
        "signing_secret_arn": SECRET_ARN,
        "enabled": True,
        "rectifiable": {"name": "full_name"},
    }
    connector = build(parse_definition(document), "req_rect_3", secrets=lambda arn: [SECRET], allow_loopback_http=True)
    outcome = base.rectify_and_verify(connector, {"email": "ada@example.com"}, {"name": NEW_NAME, "locale": "de"})
    assert (outcome.result, outcome.rectified, outcome.remaining) == ("done", 1, 0)
    assert state.profiles["ada@example.com"] == {"full_name": NEW_NAME}
    rectify = next(data for data in state.asked if data["action"] == "rectify")
    assert rectify["changes"] == {"full_name": NEW_NAME}  # only what it declares, under its own name
    assert NEW_NAME not in outcome.to_json()


# ------------------------------------------------------------------ receipts


@pytest.fixture(scope="module")
def signer():
    with mock_aws():
        kms = boto3.client("kms", region_name="eu-central-1")
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        yield receipts.KmsSigner(key, client=kms)


def rectify_outcome(**changes) -> receipts.Outcome:
    started = clock.now()
    fields = dict(
        connector_id="users-table",
        kind="dynamodb",
        action=receipts.Action.RECTIFY,
        result=receipts.Result.DONE,
        started_at=started,
        finished_at=started + timedelta(seconds=1),
        counts=receipts.Counts(found=2, rectified=2),
        key_hashes=[base.key_hash("users-table", f"k{n}") for n in range(2)],
        remaining=0,
    )
    fields.update(changes)
    return receipts.Outcome(**fields)


def test_a_rectify_entry_counts_what_was_corrected_and_an_erasure_entry_reads_as_before():
    body = receipts.connector_body(rectify_outcome())
    assert (body["action"], body["counts"]) == ("rectify", {"found": 2, "erased": 0, "kept": 0, "rectified": 2})
    erasure = receipts.connector_body(
        rectify_outcome(
            connector_id="newsletter", action=receipts.Action.ERASE, counts=receipts.Counts(found=2, erased=2)
        )
    )
    assert "rectified" not in erasure["counts"]
    assert "rectified" not in receipts.summary([erasure])
    assert receipts.summary([body, erasure])["rectified"] == 2


def test_a_rectification_is_done_only_when_every_record_read_again_holds_the_new_values():
    with pytest.raises(Exception) as refused:
        receipts.connector_body(rectify_outcome(remaining=1))
    assert "remaining" in refused.value.fields


def test_a_chain_with_rectify_entries_verifies_offline_and_tampering_is_found(signer):
    first = receipts.sign_entry(
        "req_rect_chain", 1, receipts.GENESIS, receipts.connector_body(rectify_outcome()), signer, clock.now()
    )
    entry = receipts.Entry(
        body=first[0], hash=first[1], signature=first[2], key_hashes=tuple(sorted(set(rectify_outcome().key_hashes)))
    )
    seal = receipts.sign_entry("req_rect_chain", 2, first[1], receipts.seal_body([entry]), signer, clock.now())
    sealed = receipts.Entry(body=seal[0], hash=seal[1], signature=seal[2], key_hashes=())
    document = receipts.export("req_rect_chain", [entry, sealed])
    public_key = receipts.public_key_pem(signer.public_key_der()).encode()
    assert receipts.verify(document, public_key).valid
    document["entries"][0]["body"]["counts"]["rectified"] = 5
    assert not receipts.verify(document, public_key).valid


def test_connectors_test_proves_the_write_a_correction_needs(table):
    checks = {check.operation: check.result for check in dynamodb_connector().probe()}
    assert checks["dynamodb:UpdateItem"] == "allowed" and checks["dynamodb:DeleteItem"] == "allowed"


def test_connectors_test_proves_cognitos_attribute_update(pool):
    _, pool_id = pool
    checks = {check.operation: check.result for check in cognito_connector(pool_id).probe()}
    assert checks["cognito-idp:AdminUpdateUserAttributes"] == "allowed"
