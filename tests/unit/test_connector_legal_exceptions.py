"""Legal exceptions (Art. 17(3)) against moto in-process, per kind (DynamoDB, versioned S3): records a
keep rule matches are not erased, are counted and named (basis, period, end date), are left out of
the re-query, are scheduled (sealed) for erasure when their period ends, and that later erasure runs
on the clock, reaches exactly those records, lands in the signed receipt, and waits for a legal hold."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from rightsdesk.connectors import base, build, kept_erasure, receipts, registry
from rightsdesk.connectors.definitions import DefinitionError, parse_definition
from rightsdesk.kernel import clock, retention
from rightsdesk.platform import hashing
from rightsdesk.retention import holds
from rightsdesk.store.items.kept_records import KeptRecordsItem, KeptSweepState
from rightsdesk.store.items.requests import RequestItem
from tests.support.aws import moto_cloud

REGION = "eu-central-1"
ACCOUNT = "123456789012"
TABLE = "Billing"
BUCKET = "billing-documents"
INVOICES = "HGB §257: invoices, 10 years"
TAX = "AO §147: tax records, 6 years"
DAY = 86400


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/rightsdesk-connector-{name}"


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        found = moto_cloud(patch, prefix="rightsdesk-kept", data_key=True)
        session = found.session
        dynamodb = session.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
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
        s3 = session.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        kms = session.client("kms")
        key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        yield dynamodb, s3, receipts.KmsSigner(key, client=kms)


@pytest.fixture(autouse=True)
def fresh_sweep(cloud):
    """Each test starts the later erasure from the table's creation (the clock moved by an earlier
    test is back; the state it left is not)."""
    try:
        KeptSweepState.get(KeptSweepState.PK, KeptSweepState.SK).delete()
    except KeptSweepState.DoesNotExist:
        pass


def session_factory(definition, request_id):
    return boto3.session.Session(region_name=REGION)


# ------------------------------------------------------------------ one world per kind


class DynamoWorld:
    kind = "dynamodb"

    def __init__(self, cloud, name: str):
        self.client, self.name = cloud[0], name
        self.owner = f"{name}@example.test"

    def document(self, keep: list[dict]) -> dict:
        return {
            "kind": "dynamodb",
            "id": self.name,
            "role_arn": role(self.name),
            "table_name": TABLE,
            "partition_key": "pk",
            "lookup": {"identity": "email", "attribute": "owner", "index_name": "by-owner"},
            "keep": keep,
        }

    def invoice_rule(self, basis: str = INVOICES, days: int = 30) -> dict:
        return {"basis": basis, "period_days": days, "match": {"attribute": "type", "equals": "invoice"}}

    def tax_rule(self, days: int) -> dict:
        return {"basis": TAX, "period_days": days, "match": {"attribute": "type", "begins_with": "tax"}}

    def seed(self, *types: str) -> None:
        for n, kind in enumerate(types):
            self.client.put_item(
                TableName=TABLE,
                Item={"pk": {"S": f"{self.name}#{n}"}, "owner": {"S": self.owner}, "type": {"S": kind}},
            )

    def left(self) -> list[str]:
        items = [
            self.client.get_item(TableName=TABLE, Key={"pk": {"S": f"{self.name}#{n}"}}, ConsistentRead=True).get(
                "Item"
            )
            for n in range(6)
        ]
        return sorted(item["type"]["S"] for item in items if item)


class S3World:
    kind = "s3"

    def __init__(self, cloud, name: str):
        self.client, self.name = cloud[1], name
        self.owner = f"{name}@example.test"

    def document(self, keep: list[dict]) -> dict:
        return {
            "kind": "s3",
            "id": self.name,
            "role_arn": role(self.name),
            "bucket": BUCKET,
            "subject_prefixes": [self.name + "/{email}/"],
            "keep": keep,
        }

    def invoice_rule(self, basis: str = INVOICES, days: int = 30) -> dict:
        return {"basis": basis, "period_days": days, "match": {"key_prefix": self.name + "/{email}/invoice"}}

    def tax_rule(self, days: int) -> dict:
        return {"basis": TAX, "period_days": days, "match": {"key_pattern": "*/tax*"}}

    def seed(self, *types: str) -> None:
        for n, kind in enumerate(types):
            self.client.put_object(Bucket=BUCKET, Key=f"{self.name}/{self.owner}/{kind}-{n}.txt", Body=b"x")

    def left(self) -> list[str]:
        answer = self.client.list_object_versions(Bucket=BUCKET, Prefix=f"{self.name}/")
        keys = [v["Key"] for v in answer.get("Versions", []) if v.get("IsLatest")]
        return sorted(key.rsplit("/", 1)[1].split("-")[0] for key in keys)


WORLDS = {"dynamodb": DynamoWorld, "s3": S3World}


def new_request(status: str = "in_progress") -> str:
    request_id, now = hashing.new_id("dsr"), clock.now()
    RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id="ctl_kept",
        site="kept.test",
        request_type="erasure",
        status=status,
        created_at=now,
        verified_at=now,
        expires_at=retention.request_expires_at(now, now),
    ).save()
    return request_id


def stored(world, keep: list[dict]):
    """The connector added and enabled (the later erasure builds it from the registry), for a new request."""
    document = world.document(keep)
    registry.add(document, actor="operator")
    registry.enable(document["id"], actor="operator")
    request_id = new_request()
    return build(registry.get(document["id"]).definition, request_id, session_factory=session_factory), request_id


def erased(report: kept_erasure.Report, request_id: str) -> int:
    """What a run of the later erasure erased for this test's request (other tests' items may be due too)."""
    return sum(done.get("erased", 0) for done in report.done if done["request_id"] == request_id)


def failed(report: kept_erasure.Report, request_id: str) -> list[dict]:
    return [failure for failure in report.failed if failure["request_id"] == request_id]


def kept_item(request_id: str, connector_id: str) -> KeptRecordsItem | None:
    try:
        return KeptRecordsItem.get(RequestItem.key(request_id), KeptRecordsItem.sort_key(connector_id))
    except KeptRecordsItem.DoesNotExist:
        return None


# ------------------------------------------------------------------ the erasure that keeps


@pytest.mark.parametrize("kind", sorted(WORLDS))
def test_records_under_a_keep_rule_stay_are_counted_named_and_scheduled(cloud, kind):
    world = WORLDS[kind](cloud, f"keep-{kind}-1")
    connector, request_id = stored(world, [world.invoice_rule(days=3650)])
    world.seed("invoice", "profile", "chat")
    started = clock.now()
    outcome = base.erase_and_verify(connector, {"email": world.owner})
    assert (outcome.result, outcome.found, outcome.erased, outcome.kept, outcome.remaining) == ("done", 3, 2, 1, 0)
    assert world.left() == ["invoice"]
    [exception] = outcome.legal_exceptions
    assert (exception["basis"], exception["period_days"], exception["kept"]) == (INVOICES, 3650, 1)
    until = clock.parse_iso(exception["keep_until"])
    assert timedelta(days=3650, seconds=-1) <= until - started < timedelta(days=3650, minutes=1)
    item = kept_item(request_id, connector.id)
    assert item is not None and item.kept == 1 and abs(int(item.due_at) - int(until.timestamp())) <= 1
    assert item.gsi2pk == f"KEEP#{retention.bucket_start(int(item.due_at))}"
    # sealed at rest: neither the address nor the record's key in the clear
    raw = json.dumps(item.attribute_values, default=str)
    assert world.owner not in raw and "invoice-0" not in raw and f"{world.name}#0" not in raw
    # the receipt names the exception
    entry = receipts.connector_body(receipts.from_connector_outcome(outcome))
    assert entry["legal_exception"]["basis"] == INVOICES and entry["counts"]["kept"] == 1


@pytest.mark.parametrize("kind", sorted(WORLDS))
def test_keeping_everything_found_is_kept_for_legal_basis_and_a_dry_run_counts_it(cloud, kind):
    world = WORLDS[kind](cloud, f"keep-{kind}-2")
    connector, request_id = stored(world, [world.invoice_rule()])
    world.seed("invoice", "invoice")
    planned, _ = base.plan(connector, {"email": world.owner})
    assert (planned.result, planned.kept) == ("kept_for_legal_basis", 2)
    assert kept_item(request_id, connector.id) is None  # a dry run schedules nothing
    outcome = base.erase_and_verify(connector, {"email": world.owner})
    assert (outcome.result, outcome.erased, outcome.kept, outcome.remaining) == ("kept_for_legal_basis", 0, 2, 0)
    assert world.left() == ["invoice", "invoice"]
    # a retry of the step schedules the same records once
    base.erase_and_verify(connector, {"email": world.owner})
    assert kept_item(request_id, connector.id).kept == 2


# ------------------------------------------------------------------ the erasure when the period ends


@pytest.mark.parametrize("kind", sorted(WORLDS))
def test_kept_records_are_erased_on_the_clock_exactly_and_the_receipt_says_so(cloud, kind):
    world = WORLDS[kind](cloud, f"keep-{kind}-3")
    connector, request_id = stored(world, [world.invoice_rule(days=30), world.tax_rule(days=60)])
    world.seed("invoice", "tax", "profile")
    signer = cloud[2]
    outcome = base.erase_and_verify(connector, {"email": world.owner})
    assert (outcome.erased, outcome.kept) == (1, 2)
    assert [e["basis"] for e in outcome.legal_exceptions] == [INVOICES, TAX]
    receipts.record(request_id, receipts.from_connector_outcome(outcome), signer=signer)
    body = receipts.entries(request_id)[0].body
    assert [e["basis"] for e in body["legal_exceptions"]] == [INVOICES, TAX]
    # someone else's invoice, matched by the same rule, is not the subject's: it stays
    stranger = WORLDS[kind](cloud, f"keep-{kind}-3x")
    stranger.seed("invoice")

    early = kept_erasure.run_due(session_factory=session_factory, signer=signer)
    assert erased(early, request_id) == 0 and world.left() == ["invoice", "tax"]

    clock.advance(31 * DAY)
    first = kept_erasure.run_due(session_factory=session_factory, signer=signer)
    assert erased(first, request_id) == 1 and failed(first, request_id) == []
    assert world.left() == ["tax"]  # the invoice's period ended; the tax record's has not
    item = kept_item(request_id, connector.id)
    assert item.kept == 1 and json.loads(item.exceptions)[0]["basis"] == TAX

    clock.advance(30 * DAY)
    second = kept_erasure.run_due(session_factory=session_factory, signer=signer)
    assert erased(second, request_id) == 1 and world.left() == []
    assert stranger.left() == ["invoice"]
    assert kept_item(request_id, connector.id) is None
    document = receipts.export(request_id)
    later = [e["body"] for e in document["entries"] if e["body"]["entry"] == "connector"][1:]
    assert [(b["result"], b["counts"]["erased"], b["remaining"]) for b in later] == [("done", 1, 0), ("done", 1, 0)]
    assert document["head"]["sealed"] is True
    assert receipts.verify(document, receipts.public_key_pem(signer.public_key_der()).encode()).valid
    # a sweep reads what is due, not the table: the third finds nothing to read
    third = kept_erasure.run_due(session_factory=session_factory, signer=signer)
    assert [done for done in third.done if done["request_id"] == request_id] == []


@pytest.mark.parametrize("kind", sorted(WORLDS))
def test_a_legal_hold_stops_the_later_erasure_until_released(cloud, kind):
    world = WORLDS[kind](cloud, f"keep-{kind}-4")
    connector, request_id = stored(world, [world.invoice_rule(days=10)])
    world.seed("invoice", "profile")
    base.erase_and_verify(connector, {"email": world.owner})
    holds.place(request_id, "litigation hold, case 2026-41", actor="operator")
    clock.advance(11 * DAY)
    held = kept_erasure.run_due(session_factory=session_factory)
    assert request_id in held.held and erased(held, request_id) == 0 and world.left() == ["invoice"]
    clock.advance(3 * DAY)
    assert erased(kept_erasure.run_due(session_factory=session_factory), request_id) == 0
    assert world.left() == ["invoice"]
    holds.release(request_id, actor="operator")
    clock.advance(DAY)
    released = kept_erasure.run_due(session_factory=session_factory)
    assert erased(released, request_id) == 1 and world.left() == []


def test_a_removed_connector_leaves_its_kept_records_scheduled_and_reported(cloud):
    world = DynamoWorld(cloud, "keep-removed")
    connector, request_id = stored(world, [world.invoice_rule(days=5)])
    world.seed("invoice")
    base.erase_and_verify(connector, {"email": world.owner})
    registry.disable(connector.id, actor="operator")
    clock.advance(6 * DAY)
    report = kept_erasure.run_due(session_factory=session_factory)
    assert failed(report, request_id) == [
        {"request_id": request_id, "connector_id": connector.id, "code": "connector_unavailable"}
    ]
    item = kept_item(request_id, connector.id)
    assert item is not None and int(item.due_at) > clock.epoch()  # filed for the next day, not dropped
    assert world.left() == ["invoice"]


# ------------------------------------------------------------------ declarations


@pytest.mark.parametrize(
    ("kind", "keep", "field"),
    [
        ("dynamodb", [{"basis": "tax", "period_days": 10, "match": {"attribute": "t"}}], "keep.0.match"),
        (
            "dynamodb",
            [{"basis": "tax", "period_days": 10, "match": {"attribute": "t", "equals": 1, "exists": True}}],
            "keep.0.match",
        ),
        ("dynamodb", [{"basis": "  ", "period_days": 10, "match": {"attribute": "t", "exists": True}}], "keep.0.basis"),
        (
            "dynamodb",
            [{"basis": "tax", "period_days": 0, "match": {"attribute": "t", "exists": True}}],
            "keep.0.period_days",
        ),
        ("s3", [{"basis": "tax", "period_days": 10, "match": {}}], "keep.0.match"),
        (
            "s3",
            [{"basis": "tax", "period_days": 10, "match": {"key_prefix": "a/", "key_pattern": "*"}}],
            "keep.0.match",
        ),
        ("s3", [{"basis": "tax", "period_days": 10, "match": {"key_prefix": "a/{Bad-Name}/"}}], "keep.0.match"),
        ("cognito", [{"basis": "tax", "period_days": 10, "match": {"attribute": "t", "exists": True}}], "keep"),
    ],
)
def test_keep_rules_are_checked_when_declared(kind, keep, field):
    documents = {
        "dynamodb": {
            "kind": "dynamodb",
            "id": "billing",
            "role_arn": role("billing"),
            "table_name": TABLE,
            "partition_key": "pk",
            "lookup": {"identity": "email", "attribute": "pk"},
        },
        "s3": {
            "kind": "s3",
            "id": "docs",
            "role_arn": role("docs"),
            "bucket": BUCKET,
            "subject_prefixes": ["u/{email}/"],
        },
        "cognito": {"kind": "cognito", "id": "pool", "role_arn": role("pool"), "user_pool_id": "eu-central-1_Abc123"},
    }
    with pytest.raises(DefinitionError) as refused:
        parse_definition({**documents[kind], "keep": keep})
    assert any(name.startswith(field) for name in refused.value.fields), refused.value.fields
