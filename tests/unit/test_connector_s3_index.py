"""The optional S3 index against moto in-process: kept from object notifications, a find that follows
it (its S3 calls counted with a botocore hook: they do not grow with the prefix), the fallback for
objects it could not index, removals, overwrites, redelivery, and the erasure keeping it true."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest
from moto import mock_aws

from rightsdesk.connectors import base, build, registry, s3_index, s3_index_purge
from rightsdesk.connectors.definitions import DefinitionError, parse_definition
from rightsdesk.kernel.errors import NotFound
from rightsdesk.platform import operator_identity
from rightsdesk.store.items.s3_index import S3IndexEntryItem, S3IndexObjectItem, S3IndexUnindexedItem
from tests.support.aws import moto_cloud

REGION = "eu-central-1"
ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-chats"


@pytest.fixture(scope="module")
def cloud():
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        found = moto_cloud(patch, prefix="rightsdesk-s3index", data_key=True, env={"RIGHTSDESK_STACK": None})
        yield found.session


class World:
    """One test's bucket and connector (its own names), and the S3 calls made through its session."""

    def __init__(self, session, name: str, *, versioned: bool = False, **overrides):
        self.bucket = f"s3index-{name}"
        self.s3 = session.client("s3")
        self.s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        if versioned:
            self.s3.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.calls: Counter[str] = Counter()
        self.session = boto3.session.Session(region_name=REGION)
        self.session.events.register("before-call.s3", self._count)
        document = {
            "kind": "s3",
            "id": f"chats-{name}",
            "role_arn": ROLE,
            "enabled": True,
            "bucket": self.bucket,
            "row_files": [
                {"prefix": "chats/", "format": "jsonl", "field": "user", "identity": "user_id", "index": True},
                {"prefix": "exports/", "format": "csv", "field": "email", "identity": "email", "index": True},
            ],
        }
        document.update(overrides)
        self.definition = parse_definition(document)
        self.index = s3_index.S3Index(self.definition, self.session.client("s3"))

    def _count(self, model, **kwargs):
        self.calls[model.name] += 1

    def connector(self):
        return build(self.definition, "req_s3index", session_factory=lambda d, r: self.session)

    def put(self, key: str, body: str, *, notify: bool = True) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode())
        if notify:
            self.notify(key)

    def notify(self, key: str, removed: bool = False) -> str:
        return self.index.sync(key)

    def backfill(self) -> int:
        return self.index.backfill()

    def entries(self, kind: str, value: str) -> list[str]:
        files = next(f for f in self.definition.row_files if f.identity == kind)
        partition = S3IndexEntryItem.partition(self.definition.id, s3_index.subject_hash(files, value))
        return [item.sk for item in S3IndexEntryItem.query(partition)]

    def key_hash(self, key: str) -> str:
        return self.index.key_hash(key)

    def text(self, key: str) -> str:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()


def jsonl(*users: str) -> str:
    return "".join(json.dumps({"user": user, "m": f"from {user}"}) + "\n" for user in users)


def test_the_declaration_takes_an_index_flag_and_the_indexer_size_limit_is_validated():
    definition = parse_definition(
        {
            "kind": "s3",
            "id": "chats",
            "role_arn": ROLE,
            "bucket": "chats-bucket",
            "row_files": [
                {"prefix": "chats/", "format": "jsonl", "field": "user", "identity": "user_id", "index": True}
            ],
            "max_object_bytes": 1000,
        }
    )
    assert [f.prefix for f in definition.indexed_row_files] == ["chats/"]
    assert definition.index_object_limit == 1000  # never more than a find may read
    with pytest.raises(DefinitionError) as refused:
        parse_definition({**definition.to_dict(), "index_max_object_bytes": 0})
    assert "index_max_object_bytes" in refused.value.fields
    with pytest.raises(DefinitionError):
        parse_definition(
            {**definition.to_dict(), "row_files": [{**definition.to_dict()["row_files"][0], "index": "yes"}]}
        )


def test_notifications_of_both_shapes_name_their_objects_and_a_test_event_names_none():
    direct = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "chats/a+b%2Bc.jsonl", "size": 3}},
            },
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectRemoved:Delete",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "x"}},
            },
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectTagging:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "y"}},
            },
        ]
    }
    assert s3_index.object_events(direct) == [
        s3_index.ObjectEvent("b", "chats/a b+c.jsonl", False),
        s3_index.ObjectEvent("b", "x", True),
    ]
    bridged = {
        "source": "aws.s3",
        "detail-type": "Object Deleted",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "a b"}},
    }
    assert s3_index.object_events(bridged) == [s3_index.ObjectEvent("b", "a b", True)]
    assert s3_index.object_events({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}) == []


def test_find_follows_the_index_and_its_calls_do_not_grow_with_the_prefix(cloud):
    world = World(cloud, "follows")
    world.backfill()
    world.put("chats/0000.jsonl", jsonl("u-1", "u-2"))
    connector = world.connector()

    def find_calls() -> Counter[str]:
        world.calls.clear()
        found = connector.find({"user_id": "u-1", "email": "ada@example.test"})
        assert found.count == 1
        return Counter(world.calls)

    small = find_calls()
    for number in range(1, 60):
        world.put(f"chats/{number:04d}.jsonl", jsonl(f"other-{number}", "u-2"))
    large = find_calls()
    assert large == small, "a find reads the subject's objects only, however large the prefix"
    assert large["GetObject"] == 1 and large["ListObjects"] == large["ListObjectsV2"] == 0
    assert large["ListObjectVersions"] == 1  # the one object the index names, by its own key
    # without the index, the same find reads the whole prefix
    plain = parse_definition(
        {
            **world.definition.to_dict(),
            "row_files": [{**r, "index": False} for r in world.definition.to_dict()["row_files"]],
        }
    )
    world.calls.clear()
    build(plain, "req_s3index", session_factory=lambda d, r: world.session).find({"user_id": "u-1"})
    assert world.calls["GetObject"] == 60


def test_until_the_prefix_is_backfilled_a_find_reads_it_whole(cloud):
    world = World(cloud, "backfill")
    world.put("chats/before.jsonl", jsonl("u-1"), notify=False)  # there before the notifications
    connector = world.connector()
    assert connector.find({"user_id": "u-1"}).count == 1, "not ready: the prefix is read, nothing is missed"
    assert world.backfill() == 1
    world.calls.clear()
    assert connector.find({"user_id": "u-1"}).count == 1
    assert world.calls["GetObject"] == 1
    assert world.entries("user_id", "u-1") == [world.key_hash("chats/before.jsonl")]


def test_an_object_too_large_to_index_is_read_by_every_find(cloud):
    world = World(cloud, "large", index_max_object_bytes=200)
    world.backfill()
    big = jsonl(*[f"filler-{n}" for n in range(10)], "u-1")
    assert len(big) > 200
    world.put("chats/big.jsonl", big)
    world.put("chats/small.jsonl", jsonl("u-3"))
    assert world.index.sync("chats/big.jsonl") == s3_index.UNINDEXED
    unindexed = list(S3IndexUnindexedItem.query(S3IndexUnindexedItem.partition(world.definition.id)))
    assert [(item.sk, item.reason) for item in unindexed] == [(world.key_hash("chats/big.jsonl"), "too_large")]
    connector = world.connector()
    found = connector.find({"user_id": "u-1"})
    assert [record.data["user"] for record in found.records] == ["u-1"]
    assert connector.find({"user_id": "u-3"}).count == 1  # its own object and the unindexed one read
    # rewritten small enough, it is indexed again and leaves the fallback
    world.put("chats/big.jsonl", jsonl("u-1"))
    assert list(S3IndexUnindexedItem.query(S3IndexUnindexedItem.partition(world.definition.id))) == []
    assert world.entries("user_id", "u-1") == [world.key_hash("chats/big.jsonl")]


def test_a_line_that_does_not_parse_leaves_the_object_unindexed_not_half_indexed(cloud):
    world = World(cloud, "unreadable")
    world.backfill()
    world.put("chats/broken.jsonl", jsonl("u-1") + "not json u-9\n")
    assert world.index.sync("chats/broken.jsonl") == s3_index.UNINDEXED
    assert world.connector().find({"user_id": "u-1"}).count == 1


def test_a_redelivered_notification_changes_nothing_and_an_overwrite_reindexes(cloud):
    world = World(cloud, "redelivery")
    world.backfill()
    world.put("chats/a.jsonl", jsonl("u-1", "u-2"))
    record = S3IndexObjectItem.get(S3IndexObjectItem.partition(world.definition.id), world.key_hash("chats/a.jsonl"))
    for _ in range(3):
        assert world.notify("chats/a.jsonl") == s3_index.INDEXED
    again = S3IndexObjectItem.get(S3IndexObjectItem.partition(world.definition.id), world.key_hash("chats/a.jsonl"))
    assert again.identities == record.identities and again.sealed_key == record.sealed_key
    assert world.entries("user_id", "u-1") == [world.key_hash("chats/a.jsonl")]
    # unversioned: the overwritten content's subjects go, the new ones come
    world.put("chats/a.jsonl", jsonl("u-2", "u-3"))
    assert world.entries("user_id", "u-1") == []
    assert world.entries("user_id", "u-3") == [world.key_hash("chats/a.jsonl")]
    assert len(again.identities) == 2


def test_a_removed_object_takes_its_entries_and_a_late_notification_does_not_bring_them_back(cloud):
    world = World(cloud, "removed")
    world.backfill()
    world.put("exports/people.csv", "email,name\nAda@Example.test,Ada\nbob@example.test,Bob\n")
    assert world.entries("email", "ada@example.TEST") == [world.key_hash("exports/people.csv")]
    world.s3.delete_object(Bucket=world.bucket, Key="exports/people.csv")
    assert world.notify("exports/people.csv", removed=True) == s3_index.DROPPED
    assert world.entries("email", "ada@example.test") == []
    assert world.entries("email", "bob@example.test") == []
    # the object-created notification arrives late: the object is read as it is now (gone)
    assert world.notify("exports/people.csv") == s3_index.DROPPED
    assert world.entries("email", "ada@example.test") == []


def test_in_a_versioned_bucket_older_versions_keep_their_subjects_until_the_erasure(cloud):
    world = World(cloud, "versioned", versioned=True)
    world.backfill()
    world.put("chats/v.jsonl", jsonl("u-1", "u-2"))
    world.put("chats/v.jsonl", jsonl("u-2"))  # overwritten: the older version still holds u-1
    assert world.entries("user_id", "u-1") == [world.key_hash("chats/v.jsonl")]
    world.s3.delete_object(Bucket=world.bucket, Key="chats/v.jsonl")  # a delete marker: versions stay
    assert world.notify("chats/v.jsonl", removed=True) == s3_index.KEPT
    connector = world.connector()
    assert connector.find({"user_id": "u-1"}).count == 1
    outcome = base.erase_and_verify(connector, {"user_id": "u-1"})
    assert (outcome.result, outcome.erased, outcome.remaining) == ("done", 1, 0)
    assert world.entries("user_id", "u-1") == []
    assert world.entries("user_id", "u-2") == [world.key_hash("chats/v.jsonl")]


def test_the_erasure_finds_through_the_index_and_takes_the_subjects_entries(cloud):
    world = World(cloud, "erasure")
    world.backfill()
    world.put("chats/1.jsonl", jsonl("u-1", "u-2"))
    world.put("chats/2.jsonl", jsonl("u-2"))
    world.put("chats/3.jsonl", jsonl("u-1"))
    connector = world.connector()
    outcome = base.erase_and_verify(connector, {"user_id": "u-1"})
    assert (outcome.result, outcome.found, outcome.erased, outcome.remaining) == ("done", 2, 2, 0)
    assert world.text("chats/1.jsonl") == jsonl("u-2")
    assert world.entries("user_id", "u-1") == []
    # the rewrite's own notification keeps the others' entries
    world.notify("chats/1.jsonl")
    world.notify("chats/3.jsonl")
    assert sorted(world.entries("user_id", "u-2")) == sorted(
        [world.key_hash("chats/1.jsonl"), world.key_hash("chats/2.jsonl")]
    )
    assert world.entries("user_id", "u-1") == []


def test_a_stale_entry_is_dropped_by_the_erasure_not_by_a_dry_run(cloud):
    world = World(cloud, "stale")
    world.backfill()
    world.put("chats/s.jsonl", jsonl("u-1"))
    world.put("chats/t.jsonl", jsonl("u-1"))
    world.put("chats/s.jsonl", jsonl("u-2"), notify=False)  # its notification not yet processed
    connector = world.connector()
    planned, _ = base.plan(connector, {"user_id": "u-1"})
    assert planned.found == 1
    assert len(world.entries("user_id", "u-1")) == 2, "a dry run writes nothing, not even to the index"
    outcome = base.erase_and_verify(connector, {"user_id": "u-1"})
    assert (outcome.result, outcome.erased, outcome.remaining) == ("done", 1, 0)
    assert world.entries("user_id", "u-1") == []


def test_the_index_stores_no_object_key_or_identity_in_the_clear(cloud):
    world = World(cloud, "sealed")
    world.backfill()
    world.put("chats/user-u-77.jsonl", jsonl("u-77"))
    table = cloud.client("dynamodb")
    from rightsdesk.platform.config import settings

    items = table.scan(TableName=settings().table_name)["Items"]
    text = json.dumps([item for item in items if item["pk"]["S"].startswith(f"S3IDX#{world.definition.id}#")])
    assert "u-77" not in text and "user-u-77" not in text
    assert world.connector().find({"user_id": "u-77"}).count == 1


def test_the_indexer_syncs_every_connector_indexing_the_bucket_through_its_role(cloud):
    operator = operator_identity.local("s3-index-tester")
    world = World(cloud, "indexer")
    mine = {k: v for k, v in world.definition.to_dict().items() if k != "enabled"}  # dry: indexed too
    mine["row_files"] = [files for files in mine["row_files"] if files["identity"] == "email"]  # a seed
    stored = [registry.add(mine, actor=operator), registry.add({**mine, "id": "chats-indexer-other"}, actor=operator)]
    try:
        world.put("exports/n.csv", "email\nada@example.test\n", notify=False)
        roles = []

        def session_factory(definition, request_id):
            roles.append((definition.id, request_id))
            return world.session

        message = {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": world.bucket}, "object": {"key": "exports/n.csv"}},
                },
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": "someone-elses"}, "object": {"key": "chats/n.jsonl"}},
                },
            ]
        }
        counts = s3_index.handle(s3_index.object_events(message), session_factory=session_factory)
        assert counts == {"indexed": 2}
        assert sorted(roles) == [("chats-indexer", "s3-index"), ("chats-indexer-other", "s3-index")]
        assert world.entries("email", "ada@example.test") == [world.key_hash("exports/n.csv")]
    finally:
        for item in stored:
            registry.remove(item.connector_id, actor=operator)


def test_the_cli_backfills_a_connectors_prefixes_through_its_role_and_marks_them_ready(cloud):
    from typer.testing import CliRunner

    from rightsdesk_cli.main import app

    operator = operator_identity.local("s3-index-tester")
    world = World(cloud, "cli")
    document = {k: v for k, v in world.definition.to_dict().items() if k != "enabled"}
    document["row_files"] = [files for files in document["row_files"] if files["identity"] == "email"]
    stored = registry.add(document, actor=operator)
    try:
        world.put("exports/old.csv", "email,plan\nada@example.test,pro\n", notify=False)
        world.put("logs/elsewhere.csv", "email\nada@example.test\n", notify=False)  # not an indexed prefix
        result = CliRunner().invoke(app, ["--json", "connectors", "index", stored.connector_id])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["index"] == {
            "connector_id": stored.connector_id,
            "objects": 1,
            "prefixes": ["exports/"],
        }
        assert world.entries("email", "ada@example.test") == [world.key_hash("exports/old.csv")]
        files = world.definition.row_files[1]
        assert world.index.ready(files)
        events = registry.history(stored.connector_id)
        assert [e.action for e in events][0] == "connector_indexed"
        assert events[0].operator is not None, "names the operator who ran it"
        refused = CliRunner().invoke(app, ["--json", "connectors", "index", "nobody-here"])
        assert refused.exit_code != 0
    finally:
        registry.remove(stored.connector_id, actor=operator)


def test_a_tenant_scoped_prefix_is_indexed_across_tenants_and_found_within_one(cloud):
    world = World(
        cloud,
        "tenants",
        tenant_scoped=True,
        row_files=[
            {
                "prefix": "tenants/{tenant_id}/chats/",
                "format": "jsonl",
                "field": "user",
                "identity": "user_id",
                "index": True,
            }
        ],
    )
    world.backfill()
    world.put("tenants/t-1/chats/a.jsonl", jsonl("u-1"))
    world.put("tenants/t-2/chats/b.jsonl", jsonl("u-1"))
    assert world.index.sync("tenantsX/t-1/chats/c.jsonl") == s3_index.IGNORED  # not under the prefix
    assert len(world.entries("user_id", "u-1")) == 2
    found = world.connector().find({"user_id": "u-1", "tenant_id": "t-1"})
    assert [record.key for record in found.records] == [f"{world.bucket}/tenants/t-1/chats/a.jsonl"]


def test_the_handler_syncs_each_message_and_reports_only_the_failed_ones(monkeypatch):
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "rightsdesk-test")
    spec = importlib.util.spec_from_file_location("_s3_indexer_app", root / "functions/s3_indexer/app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    event = json.loads((root / "events/s3_indexer/sqs_object_created.json").read_text())
    failing = {**event["Records"][0], "messageId": "failing", "body": json.dumps({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "down"}, "object": {"key": "k"}}}
    ]})}  # fmt: skip
    garbage = {**event["Records"][0], "messageId": "garbage", "body": "not json"}
    synced = []

    def handle(events):
        events = list(events)
        if any(e.bucket == "down" for e in events):
            raise RuntimeError("the store is down")
        synced.extend(events)
        return {"indexed": len(events)}

    monkeypatch.setattr(s3_index, "handle", handle)
    context = SimpleNamespace(
        function_name="rightsdesk-test-S3IndexerFunction",
        memory_limit_in_mb=1024,
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:eu-central-1:123456789012:function:rightsdesk-test-S3IndexerFunction",
        aws_request_id="test-request",
        get_remaining_time_in_millis=lambda: 60_000,
    )
    answer = app.lambda_handler({"Records": [*event["Records"], failing, garbage]}, context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "failing"}]}
    assert synced == [s3_index.ObjectEvent("chat-transcripts", "chats/2026-12-04/part-0001.jsonl", False)]


def test_two_syncs_of_one_object_at_once_converge_on_its_content(cloud, monkeypatch):
    world = World(cloud, "race")
    world.backfill()
    world.put("chats/r.jsonl", jsonl("u-1"))
    world.s3.put_object(Bucket=world.bucket, Key="chats/r.jsonl", Body=jsonl("u-2").encode())
    put_entries = s3_index.S3Index._put_entries
    raced = []

    def racing(self, key, identities, now):
        put_entries(self, key, identities, now)
        if not raced:  # another delivery syncs the same object between our read and our write
            raced.append(True)
            world.s3.put_object(Bucket=world.bucket, Key="chats/r.jsonl", Body=jsonl("u-3").encode())
            assert s3_index.S3Index(world.definition, world.session.client("s3")).sync(key) == s3_index.INDEXED

    monkeypatch.setattr(s3_index.S3Index, "_put_entries", racing)
    assert world.index.sync("chats/r.jsonl") == s3_index.INDEXED  # its write refused, read again
    record = S3IndexObjectItem.get(S3IndexObjectItem.partition(world.definition.id), world.key_hash("chats/r.jsonl"))
    assert int(record.revision) == 3
    assert world.entries("user_id", "u-3") == [world.key_hash("chats/r.jsonl")]
    assert world.entries("user_id", "u-1") == []
    assert world.connector().find({"user_id": "u-2"}).count == 0


# ------------------------------------------------------------------ removing a connector purges its index

PURGE_OPERATOR = operator_identity.local("s3-index-purger")


def purge_world(cloud, name: str) -> World:
    """A world whose connector can be stored on its own (email is a seed of the identity graph):
    JSON Lines rows naming addresses, small objects only indexed."""
    files = {"prefix": "chats/", "format": "jsonl", "field": "user", "identity": "email", "index": True}
    return World(cloud, name, row_files=[files], index_max_object_bytes=1500)


def stored_document(definition) -> dict:
    return {k: v for k, v in definition.to_dict().items() if k != "enabled"}


def index_items(cloud, connector_id: str) -> list[tuple[str, str]]:
    """Every item under the connector's key space S3IDX#<id>#, read past the model (a scan)."""
    from rightsdesk.platform.config import settings

    pages = (
        cloud.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=settings().table_name,
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": f"S3IDX#{connector_id}#"}},
            ConsistentRead=True,
        )
    )
    return sorted((item["pk"]["S"], item["sk"]["S"]) for page in pages for item in page["Items"])


def fill_index(world: World) -> None:
    """Objects under the prefix: one naming 30 subjects (more than one BatchWriteItem), subjects
    shared between objects, one too large to index; the prefix backfilled (ready)."""
    world.put("chats/crowd.jsonl", "".join(json.dumps({"user": f"p{n}@example.test"}) + "\n" for n in range(30)))
    for number in range(5):
        world.put(f"chats/{number}.jsonl", jsonl(f"p{number}@example.test", "shared@example.test"))
    world.put("chats/big.jsonl", jsonl(*[f"big-{n}@example.test" for n in range(40)]))  # > 1,500 bytes
    world.backfill()


def kinds(items: list[tuple[str, str]]) -> Counter[str]:
    return Counter("entries" if "#ID#" in pk else pk.rsplit("#", 1)[1].lower() for pk, _ in items)


def test_removing_a_connector_purges_every_partition_of_its_index_and_only_its_own(cloud, monkeypatch):
    world = purge_world(cloud, "purge")
    # another connector indexing the same bucket, its id extending this one's: the table's other tenant
    other = s3_index.S3Index(
        parse_definition({**world.definition.to_dict(), "id": f"{world.definition.id}-other"}), world.index.client
    )
    stored = registry.add(stored_document(world.definition), actor=PURGE_OPERATOR)
    fill_index(world)
    other.backfill()
    mine, theirs = index_items(cloud, stored.connector_id), index_items(cloud, other.id)
    # an entry per (subject, object): 30 in the crowd, and in each small object its own and the shared one
    assert kinds(mine) == {"objects": 7, "entries": 30 + 5 * 2, "unindexed": 1, "ready": 1}
    monkeypatch.setattr(s3_index_purge, "_PURGE_ROUND", 2)  # several rounds of object items

    removal = registry.remove(stored.connector_id, actor=PURGE_OPERATOR)

    assert index_items(cloud, stored.connector_id) == []
    assert index_items(cloud, other.id) == theirs, "another connector's index is untouched"
    assert removal.definition_removed and removal.index_items == dict(kinds(mine))
    assert removal.index_items_removed == len(mine)
    assert other.objects_for(world.definition.row_files[0], "shared@example.test", "chats/")[0] == [
        f"chats/{n}.jsonl" for n in range(5)
    ]
    with pytest.raises(NotFound):  # nothing left: the id is unknown again
        registry.remove(stored.connector_id, actor=PURGE_OPERATOR)
    s3_index_purge.purge(other.id)


def test_an_interrupted_purge_is_finished_by_removing_the_connector_again(cloud, monkeypatch):
    from botocore.exceptions import ClientError
    from typer.testing import CliRunner

    from rightsdesk_cli.main import app

    world = purge_world(cloud, "interrupted")
    stored = registry.add(stored_document(world.definition), actor=PURGE_OPERATOR)
    fill_index(world)
    before = index_items(cloud, stored.connector_id)
    delete_all, calls = s3_index_purge._delete_all, []

    def throttled(model, items):
        calls.append(model)
        if len(calls) == 4:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "BatchWriteItem")
        return delete_all(model, items)

    monkeypatch.setattr(s3_index_purge, "_PURGE_ROUND", 2)
    monkeypatch.setattr(s3_index_purge, "_delete_all", throttled)
    with pytest.raises(ClientError):
        registry.remove(stored.connector_id, actor=PURGE_OPERATOR)
    assert not registry.is_stored(stored.connector_id), "the definition went first"
    left = index_items(cloud, stored.connector_id)
    assert 0 < len(left) < len(before)
    partial = [e for e in registry.history(stored.connector_id) if e.action == "connector_index_purged"]
    assert len(partial) == 1, "what the cut-short purge deleted is audited"

    monkeypatch.setattr(s3_index_purge, "_delete_all", delete_all)
    result = CliRunner().invoke(app, ["--json", "connectors", "remove", stored.connector_id])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["definition_removed"] is False and answer["index_items_removed"] == len(left)
    assert index_items(cloud, stored.connector_id) == []
    purged = [e for e in registry.history(stored.connector_id) if e.action == "connector_index_purged"]
    counted = [dict(part.split("=") for part in e.cause.split()) for e in purged]
    assert sum(int(n) for c in counted for n in c.values()) == len(before), "every item deleted, once, on the trail"
    assert [e.action for e in registry.history(stored.connector_id)].count("connector_removed") == 1
    again = CliRunner().invoke(app, ["--json", "connectors", "remove", stored.connector_id])
    assert again.exit_code == 1 and json.loads(again.stdout)["error"]["code"] == "connector_not_found"


def test_an_indexer_batch_that_read_the_connectors_before_the_removal_takes_back_its_writes(cloud):
    world = purge_world(cloud, "late")
    stored = registry.add(stored_document(world.definition), actor=PURGE_OPERATOR)
    world.put("chats/early.jsonl", jsonl("early@example.test"))
    world.put("chats/late.jsonl", jsonl("late@example.test"), notify=False)
    removals = []

    def removed_meanwhile(definition, request_id):
        # the batch has read the stored connectors; the operator removes this one (and its
        # index is purged) before the batch writes anything
        removals.append(registry.remove(definition.id, actor=PURGE_OPERATOR))
        return world.session

    message = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": world.bucket}, "object": {"key": "chats/late.jsonl"}},
            }
        ]
    }
    counts = s3_index.handle(s3_index.object_events(message), session_factory=removed_meanwhile)
    assert removals and removals[0].index_items_removed == 2  # early's object item and entry
    assert counts == {"indexed": 1, "discarded": 1}
    assert index_items(cloud, stored.connector_id) == [], "the late write was taken back"


def test_a_backfill_racing_the_removal_leaves_nothing_behind(cloud):
    world = purge_world(cloud, "late-backfill")
    stored = registry.add(stored_document(world.definition), actor=PURGE_OPERATOR)
    world.put("chats/old.jsonl", jsonl("old@example.test"), notify=False)

    def removed_meanwhile(definition, request_id):
        registry.remove(definition.id, actor=PURGE_OPERATOR)
        return world.session

    with pytest.raises(NotFound):
        s3_index.backfill_connector(stored.connector_id, actor=PURGE_OPERATOR, session_factory=removed_meanwhile)
    assert index_items(cloud, stored.connector_id) == []
    assert "connector_indexed" not in [e.action for e in registry.history(stored.connector_id)]


def test_the_purge_is_audited_with_its_counts_and_the_cli_says_how_many_items_went(cloud):
    from typer.testing import CliRunner

    from rightsdesk_cli.main import app

    world = purge_world(cloud, "audited")
    stored = registry.add(stored_document(world.definition), actor=PURGE_OPERATOR)
    world.put("chats/a.jsonl", jsonl("a@example.test", "b@example.test"))
    world.backfill()
    result = CliRunner().invoke(app, ["connectors", "remove", stored.connector_id])
    assert result.exit_code == 0, result.output
    assert "is removed with 4 S3 index items (1 object, 2 entries, 1 ready prefix)" in " ".join(result.stdout.split())

    history = CliRunner().invoke(app, ["--json", "connectors", "history", stored.connector_id])
    events = json.loads(history.stdout)["events"]
    assert sorted(e["action"] for e in events) == ["connector_added", "connector_index_purged", "connector_removed"]
    purged = next(e for e in events if e["action"] == "connector_index_purged")
    assert purged["cause"] == "objects=1 entries=2 unindexed=0 ready=1"
    assert purged["operator"] is not None, "names the operator who ran it"
    assert "a@example.test" not in history.stdout and "chats/a.jsonl" not in history.stdout
    people = CliRunner().invoke(app, ["connectors", "history", stored.connector_id])
    assert "connector_index_purged" in people.stdout and "objects=1" in people.stdout

    # a connector that never had an index: removed, no purge event
    bare = registry.add({**stored_document(world.definition), "id": "chats-audited-bare"}, actor=PURGE_OPERATOR)
    assert registry.remove(bare.connector_id, actor=PURGE_OPERATOR).index_items_removed == 0
    assert [e.action for e in registry.history(bare.connector_id)] == ["connector_removed", "connector_added"]
