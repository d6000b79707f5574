"""One subject erased across the operator's stores by the connectors, at two store sizes.

The stores (in a moto server process of their own, local/moto_process.py, as the local runner
runs it): a Cognito pool (email -> sub and user id), a DynamoDB table whose items name their owner's
user id, found through a KEYS_ONLY GSI, and a versioned S3 bucket of JSON Lines chat transcripts
under one prefix, rows naming their user id, and a second bucket with the same objects under a
prefix declared `index: true` (the S3 index, rightsdesk.connectors.s3_index, in the stack's own
table: backfilled after the first round's seeding, later objects synced as they are written, as
the indexer does on their notifications). They are seeded at the smaller size (10k items, 100
objects, 100 users) with one subject's data (20 items, rows in 5 objects, 1 user), the subject is
erased, then the stores are topped up to the full size (100k items, 1,000 objects, 1,000 users)
with a second subject, who is erased in turn. Seeding is BatchWriteItem and parallel
PutObject/AdminCreateUser, outside the measure.

The erasure is the connector worker's sequence without the state machine and its bookkeeping
(rightsdesk.connectors.execution: plan_step, then connector_step per connector): build each
connector, `identity_graph.resolve` (every connector's find, in stage order: the plan), then per
connector in reverse stage order `base.erase_and_verify` without a find (the step finds again,
erases, and asks again). Receipts, step records and their signatures are the worker's own
DynamoDB and KMS calls, measured elsewhere; they are not the stores'. (The indexed S3 connector's
DynamoDB and KMS calls are its index's, and counted as its own.)

Per connector: every AWS call (local/calls.py's botocore hook, each connector's work run as
`faults.running(<connector id>)`, counted by bench.aws_calls.api_calls), what the answers held
(DynamoDB items: GSI entries returned and items read back; S3: versions listed, objects read and
their bytes; Cognito: users listed and read), wall time, and the S3 rewrite's throughput (the
bytes of the objects rewritten, read and written back, over the erase's time).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE = "BenchUsers"
INDEX = "by-owner"
BUCKET = "bench-transcripts"
INDEXED_BUCKET = "bench-transcripts-indexed"  # the same objects, under a prefix declared `index: true`
PREFIX = "chats/"
ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-{}"
# figures' label -> connector id (the labels name the two S3 connectors apart)
CONNECTOR_IDS = {
    "cognito": "bench-pool",
    "dynamodb": "bench-items",
    "s3": "bench-transcripts",
    "s3_indexed": "bench-transcripts-indexed",
}
LABELS = {connector_id: label for label, connector_id in CONNECTOR_IDS.items()}
# The connectors whose records read must follow the subject, and the store's unit in a round.
FOLLOW_THE_SUBJECT = {"dynamodb": "items", "cognito": "users", "s3_indexed": "objects"}
SUBJECT_ITEMS = 20
SUBJECT_OBJECTS = 5
SUBJECT_ROWS_PER_OBJECT = 3
ROWS_PER_OBJECT = 400  # about 64 KB of JSON Lines an object
ITEMS_PER_OWNER = 20  # the other owners have as many items as the subject
WRITE_BATCH = 25  # BatchWriteItem's limit
SEED_THREADS = 8
SIZES = ((10_000, 100, 100), (100_000, 1_000, 1_000))  # (items, objects, users)


# ------------------------------------------------------------------ the stores


def _create_stores(clients: dict[str, Any]) -> str:
    clients["dynamodb"].create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": INDEX,
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = clients["s3"]
    for bucket in (BUCKET, INDEXED_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return clients["cognito-idp"].create_user_pool(
        PoolName="bench-users",
        Schema=[{"Name": "user_id", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]["Id"]


def _definitions(pool_id: str) -> list[Any]:
    from rightsdesk.connectors.definitions import parse_definition

    documents = [
        {
            "kind": "cognito",
            "id": CONNECTOR_IDS["cognito"],
            "role_arn": ROLE.format(CONNECTOR_IDS["cognito"]),
            "user_pool_id": pool_id,
            "yields": {"cognito_sub": "sub", "user_id": "custom:user_id"},
        },
        {
            "kind": "dynamodb",
            "id": CONNECTOR_IDS["dynamodb"],
            "role_arn": ROLE.format(CONNECTOR_IDS["dynamodb"]),
            "table_name": TABLE,
            "partition_key": "pk",
            "lookup": {"identity": "user_id", "attribute": "owner", "index_name": INDEX},
        },
        {
            "kind": "s3",
            "id": CONNECTOR_IDS["s3"],
            "role_arn": ROLE.format(CONNECTOR_IDS["s3"]),
            "bucket": BUCKET,
            "row_files": [{"prefix": PREFIX, "format": "jsonl", "field": "user", "identity": "user_id"}],
        },
    ]
    documents.append(
        {
            "kind": "s3",
            "id": CONNECTOR_IDS["s3_indexed"],
            "role_arn": ROLE.format(CONNECTOR_IDS["s3_indexed"]),
            "bucket": INDEXED_BUCKET,
            "row_files": [{"prefix": PREFIX, "format": "jsonl", "field": "user", "identity": "user_id", "index": True}],
        }
    )
    # As the registry parses an enabled connector's stored definition (a new one runs dry).
    return [parse_definition({**document, "enabled": True}) for document in documents]


def _create_index_store() -> None:
    """The stack's own table, where the S3 index lives, and the data key its object keys are sealed
    with (as tests/support/aws.py's moto_cloud makes them); the core bound to both."""
    import os

    import boto3

    from rightsdesk.platform import aws_clients, config, sealing
    from rightsdesk.store.items.table import bind_table
    from tests.support.aws import create_tables_from_template

    session = boto3.session.Session(region_name="eu-central-1")
    tables = create_tables_from_template(session, "bench")
    os.environ["RIGHTSDESK_TABLE"] = tables["RightsTable"]
    os.environ["DATA_KEY_ID"] = session.client("kms").create_key(Description="bench data key")["KeyMetadata"]["KeyId"]
    config.reload()
    aws_clients.forget_clients()
    sealing.forget_clients()
    bind_table(tables["RightsTable"])


def _item(pk: str, owner: str) -> dict[str, Any]:
    return {
        "pk": {"S": pk},
        "owner": {"S": owner},
        "kind": {"S": "order"},
        "total": {"N": "42.50"},
        "note": {"S": "x" * 120},
    }


def _row(user: str, n: int) -> str:
    return json.dumps({"user": user, "at": f"2026-11-{1 + n % 28:02d}T10:{n % 60:02d}:00Z", "text": "y" * 110}) + "\n"


def _object_body(serial: int, subject: str | None) -> bytes:
    rows = [_row(f"user-o{serial:05d}-{n % 7}", n) for n in range(ROWS_PER_OBJECT)]
    if subject is not None:  # the subject's rows, spread through the object
        step = ROWS_PER_OBJECT // (SUBJECT_ROWS_PER_OBJECT + 1)
        for k in range(SUBJECT_ROWS_PER_OBJECT):
            rows[step * (k + 1)] = _row(subject, k)
    return "".join(rows).encode("utf-8")


def _batch_write(client: Any, items: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] | None = {TABLE: [{"PutRequest": {"Item": item}} for item in items]}
    while pending:
        pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None


@dataclass
class _Seeded:
    """What the stores hold besides the subjects (erased subjects leave nothing behind)."""

    items: int = 0
    objects: int = 0
    users: int = 0
    holders: list[str] = field(default_factory=list)  # the keys of the last subject's objects
    synced: list[float] = field(default_factory=list)  # seconds of each object's index sync


def _seed(
    clients: dict[str, Any],
    pool_id: str,
    seeded: _Seeded,
    size: tuple[int, int, int],
    subject: dict,
    index: Any = None,
) -> float:
    """Top the stores up to `size` with others' data and the subject's; seconds taken. Every object
    goes to both buckets; with `index` (its prefix backfilled already), each object written to the
    indexed bucket is synced at once, as the indexer does on the object-created notification."""
    items, objects, users = size
    started = time.perf_counter()
    records = [
        _item(f"ITEM#{n:07d}", f"user-{n // ITEMS_PER_OWNER:06d}") for n in range(seeded.items, items - SUBJECT_ITEMS)
    ]
    records += [_item(f"ITEM#{subject['tag']}-{n:02d}", subject["user_id"]) for n in range(SUBJECT_ITEMS)]
    batches = [records[i : i + WRITE_BATCH] for i in range(0, len(records), WRITE_BATCH)]
    # The subject's rows are in objects this size adds, spread through them (never overwritten:
    # one version an object, but for those an earlier erasure rewrote).
    added = objects - seeded.objects
    holders = {
        seeded.objects + added * k // SUBJECT_OBJECTS + added // (2 * SUBJECT_OBJECTS) for k in range(SUBJECT_OBJECTS)
    }
    dynamodb, s3, cognito = clients["dynamodb"], clients["s3"], clients["cognito-idp"]
    seeded.holders = [f"{PREFIX}{serial:05d}.jsonl" for serial in sorted(holders)]
    seeded.synced = []

    def put_object(serial: int) -> None:
        body = _object_body(serial, subject["user_id"] if serial in holders else None)
        key = f"{PREFIX}{serial:05d}.jsonl"
        for bucket in (BUCKET, INDEXED_BUCKET):
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        if index is not None:
            # The notification's work, in-process (S3IndexQueue and the indexer's Lambda would
            # add their polling and a cold start, not index work).
            started = time.perf_counter()
            index.sync(key)
            seeded.synced.append(time.perf_counter() - started)

    def create_user(email: str, user_id: str) -> None:
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "custom:user_id", "Value": user_id}],
            MessageAction="SUPPRESS",
        )

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        work = [pool.submit(_batch_write, dynamodb, batch) for batch in batches]
        work += [pool.submit(put_object, serial) for serial in range(seeded.objects, objects)]
        work += [
            pool.submit(create_user, f"bench-{n:05d}@example.org", f"user-c{n:05d}")
            for n in range(seeded.users, users - 1)
        ]
        work.append(pool.submit(create_user, subject["email"], subject["user_id"]))
        for done in work:
            done.result()
    seeded.items, seeded.objects, seeded.users = items - SUBJECT_ITEMS, objects, users - 1
    return time.perf_counter() - started


# ------------------------------------------------------------------ what the answers held


@dataclass
class Reads:
    """What one connector's calls answered, counted from the parsed answers (botocore after-call)."""

    counts: Counter[str] = field(default_factory=Counter)
    phase_seconds: Counter[str] = field(default_factory=Counter)

    def after_call(self, http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        if (
            model is None
            or not isinstance(parsed, dict)
            or (http_response is not None and http_response.status_code >= 300)
        ):
            return
        name = model.name
        if name == "Query":
            self.counts["index entries"] += int(parsed.get("Count", 0))
        elif name == "Scan":
            self.counts["items scanned"] += int(parsed.get("ScannedCount", 0))
        elif name == "GetItem":
            self.counts["items read back"] += 1 if parsed.get("Item") else 0
        elif name == "ListObjectVersions":
            self.counts["versions listed"] += len(parsed.get("Versions", [])) + len(parsed.get("DeleteMarkers", []))
        elif name == "GetObject":
            self.counts["objects read"] += 1
            self.counts["bytes read"] += int(parsed.get("ContentLength", 0))
        elif name == "ListUsers":
            self.counts["users listed"] += len(parsed.get("Users", []))
        elif name == "AdminGetUser":
            self.counts["users read"] += 1

    def items_read(self, kind: str) -> int:
        """The store's records the connector read: DynamoDB items (index entries and items read
        back), S3 objects (every version read), Cognito users (listed and read)."""
        keys = {
            "dynamodb": ("index entries", "items scanned", "items read back"),
            "s3": ("objects read",),
            "cognito": ("users listed", "users read"),
        }[kind]
        return sum(self.counts[key] for key in keys)


def _timed(reads: Reads, connector_id: str, phase: str, method: Any) -> Any:
    """`method`, its calls made as the connector's (local/calls.py records them under its id) and
    its time added to the phase."""
    from local import faults

    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        with faults.running(connector_id):
            try:
                return method(*args, **kwargs)
            finally:
                reads.phase_seconds[phase] += time.perf_counter() - started

    return call


def _rewritten(found: Any) -> tuple[int, int]:
    """(objects, bytes) an S3 erase rewrites: the current version of each object holding a row."""
    current = {record.handle[1].key: record.handle[1].size for record in found.records if record.handle[1].latest}
    return len(current), sum(current.values())


@dataclass
class _Transfer:
    """The S3 erase's object reads (body included) and conditional writes: bytes and seconds."""

    bytes: int = 0
    seconds: float = 0.0
    erasing: bool = False

    def reads(self, read: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not self.erasing:
                return read(*args, **kwargs)
            started = time.perf_counter()
            text, answer = read(*args, **kwargs)
            self.seconds += time.perf_counter() - started
            self.bytes += len(text.encode("utf-8"))
            return text, answer

        return call

    def writes(self, put_object: Any) -> Any:
        def call(**parameters: Any) -> Any:
            started = time.perf_counter()
            try:
                return put_object(**parameters)
            finally:
                self.seconds += time.perf_counter() - started
                self.bytes += len(parameters["Body"])

        return call


def _count_index_answers(connector: Any, reads: Reads) -> None:
    """What the S3 index answered the connector's finds: the objects its entries named for the
    subject and the unindexed ones every find reads (its DynamoDB and KMS calls are recorded as
    the connector's by local/calls.py; its reads are not the connector's session's)."""
    from rightsdesk.connectors.s3_index import S3Index

    index = connector._index = S3Index(connector.definition, connector.client)
    objects_for = index.objects_for

    def counted(*args: Any, **kwargs: Any) -> tuple[list[str], list[str]]:
        named, unindexed = objects_for(*args, **kwargs)
        reads.counts["objects named by the index"] += len(named)
        reads.counts["unindexed objects"] += len(unindexed)
        return named, unindexed

    index.objects_for = counted


# ------------------------------------------------------------------ one erasure


def _erase_subject(definitions: list[Any], subject: dict, recorded: Path, request_id: str) -> dict[str, Any]:
    import boto3

    from bench.aws_calls import api_calls, read_rows
    from rightsdesk.connectors import base, build, identity_graph

    reads: dict[str, Reads] = {}

    def session_factory(definition: Any, _request_id: str) -> Any:
        # moto accepts any credentials: the role is not assumed here (one STS call a connector).
        session = boto3.session.Session(region_name="eu-central-1")
        reads[definition.id] = Reads()
        session.events.register("after-call", reads[definition.id].after_call)
        return session

    connectors = [build(definition, request_id, session_factory=session_factory) for definition in definitions]
    rewrites: dict[str, list[tuple[int, int]]] = {}
    transfers: dict[str, _Transfer] = {}
    for connector in connectors:
        counts = reads[connector.id]
        connector.find = _timed(counts, connector.id, "find", connector.find)
        erase = _timed(counts, connector.id, "erase", connector.erase)
        if connector.kind == "s3":
            rewrites[connector.id], transfers[connector.id] = [], _Transfer()

            def erase(
                found: Any,
                _erase: Any = erase,
                rewrote: Any = rewrites[connector.id],
                transfer: Any = transfers[connector.id],
            ) -> Any:
                rewrote.append(_rewritten(found))
                transfer.erasing = True
                try:
                    return _erase(found)
                finally:
                    transfer.erasing = False

            connector._read = transfers[connector.id].reads(connector._read)
            connector.client.put_object = transfers[connector.id].writes(connector.client.put_object)
            if any(files.index for files in connector.definition.row_files):
                _count_index_answers(connector, counts)

        connector.erase = erase

    before = recorded.stat().st_size if recorded.exists() else 0
    started = time.perf_counter()
    # plan_step: every find, in stage order, and the identities they yield
    resolution = identity_graph.resolve(connectors, {"email": subject["email"]})
    assert not resolution.parked, resolution.ambiguous
    assert resolution.identities.get("user_id") == subject["user_id"], "the pool did not yield the user id"
    plan_seconds = {connector.id: reads[connector.id].phase_seconds["find"] for connector in connectors}
    # connector_step per connector, dependents first: find again, erase, ask again
    outcomes: dict[str, base.Outcome] = {}
    step_seconds: dict[str, float] = {}
    by_id = {connector.id: connector for connector in connectors}
    for stage in reversed(resolution.plan.stages):
        for connector_id in stage:
            connector = by_id[connector_id]
            identities = {kind: resolution.identities[kind] for kind in sorted(connector.needs)}
            step_started = time.perf_counter()
            outcomes[connector_id] = base.erase_and_verify(connector, identities)
            step_seconds[connector_id] = time.perf_counter() - step_started
    total = time.perf_counter() - started
    rows = read_rows(recorded, before)

    figures: dict[str, Any] = {}
    for connector in connectors:
        outcome = outcomes[connector.id]
        assert outcome.result == base.DONE and outcome.remaining == 0, (connector.id, outcome.to_dict())
        counts = reads[connector.id]
        figures[LABELS[connector.id]] = {
            "connector_id": connector.id,
            "found": outcome.found,
            "erased": outcome.erased,
            "remaining": outcome.remaining,
            "calls": dict(api_calls(rows, connector.id)),
            "reads": dict(counts.counts),
            "items_read": counts.items_read(connector.kind),
            "plan_find_s": plan_seconds[connector.id],
            "step_s": step_seconds[connector.id],
            "erase_s": counts.phase_seconds["erase"],
        }
    for connector_id, rewrote in rewrites.items():
        figures[LABELS[connector_id]]["rewritten_objects"] = sum(objects for objects, _ in rewrote)
        figures[LABELS[connector_id]]["rewritten_bytes"] = sum(size for _, size in rewrote)
        figures[LABELS[connector_id]]["transfer_bytes"] = transfers[connector_id].bytes
        figures[LABELS[connector_id]]["transfer_s"] = transfers[connector_id].seconds
    figures["total_s"] = total
    return figures


def measure(recorded: Path, sizes: tuple[tuple[int, int, int], ...] = SIZES) -> list[dict]:
    import boto3

    from rightsdesk.connectors.s3_index import S3Index

    clients = {name: boto3.client(name, region_name="eu-central-1") for name in ("dynamodb", "s3", "cognito-idp")}
    pool_id = _create_stores(clients)
    _create_index_store()
    definitions = _definitions(pool_id)
    # The indexer's side, in-process: the same S3Index the indexer's Lambda and the CLI's backfill use.
    index = S3Index(next(d for d in definitions if d.id == CONNECTOR_IDS["s3_indexed"]), clients["s3"])
    seeded = _Seeded()
    rounds = []
    for number, size in enumerate(sizes):
        tag = uuid.uuid4().hex[:8]
        subject = {"tag": tag, "email": f"subject-{tag}@example.org", "user_id": f"user-subject-{tag}"}
        # The first round's objects were there before the index: the backfill indexes them (every
        # version) and marks the prefix ready; later objects are synced as they are written.
        seed_seconds = _seed(clients, pool_id, seeded, size, subject, index if number else None)
        kept: dict[str, Any] = {"synced": len(seeded.synced), "sync_s": sum(seeded.synced)}
        if not number:
            started = time.perf_counter()
            kept["backfilled"] = index.backfill()
            kept["backfill_s"] = time.perf_counter() - started
        figures = _erase_subject(definitions, subject, recorded, f"dsr_bench{tag}")
        # The rewrites' own notifications: the index re-reads those objects for the others' rows.
        for key in seeded.holders:
            index.sync(key)
        rounds.append(
            {"items": size[0], "objects": size[1], "users": size[2], "seed_s": seed_seconds, "index": kept, **figures}
        )
    return rounds


# ------------------------------------------------------------------ make bench


def check(rounds: list[dict]) -> list[str]:
    """What the bench asserts of its own figures: the subject's records found and erased at every
    size, and DynamoDB, Cognito and indexed S3 reads equal at every size (they follow the
    subject's data)."""
    problems = []
    for kind in FOLLOW_THE_SUBJECT:
        read = {r[kind]["items_read"] for r in rounds}
        if len(read) != 1:
            problems.append(f"{kind}: records read differ with the store's size: {sorted(read)}")
    for r in rounds:
        if r["dynamodb"]["erased"] != SUBJECT_ITEMS:
            problems.append(f"dynamodb: {r['dynamodb']['erased']} items erased of {SUBJECT_ITEMS}")
        for kind in ("s3", "s3_indexed"):
            if r[kind]["rewritten_objects"] != SUBJECT_OBJECTS:
                problems.append(f"{kind}: {r[kind]['rewritten_objects']} objects rewritten of {SUBJECT_OBJECTS}")
        if r["cognito"]["erased"] != 1:
            problems.append(f"cognito: {r['cognito']['erased']} users erased of 1")
    return problems


def _index_keeping(r: dict) -> str:
    kept = r["index"]
    done = []
    if "backfilled" in kept:
        done.append(f"the backfill indexed {kept['backfilled']:,} objects in {kept['backfill_s']:.1f} s")
    if kept["synced"]:
        done.append(
            f"{kept['synced']:,} objects were synced as they were written, {kept['sync_s'] / kept['synced'] * 1000:.0f} ms "
            f"each, {SEED_THREADS} at a time ({kept['sync_s']:.0f} s across the threads, within the seeding's "
            f"{r['seed_s']:.0f} s)"
        )
    return f"at {r['objects']:,} objects, " + " and ".join(done)


def _listing(calls: dict[str, int]) -> str:
    return ", ".join(
        f"{name.split('.', 1)[1]} x{count}" if count > 1 else name.split(".", 1)[1]
        for name, count in sorted(calls.items())
    )


def _mb(count: int) -> str:
    return f"{count / 1_000_000:.1f}"


def section(rounds: list[dict]) -> str:
    problems = check(rounds)
    rows = []
    for r in rounds:
        store = {
            "dynamodb": f"{r['items']:,} items",
            "s3": f"{r['objects']:,} objects",
            "s3_indexed": f"{r['objects']:,} objects, indexed",
            "cognito": f"{r['users']:,} users",
        }
        for kind in ("dynamodb", "s3", "s3_indexed", "cognito"):
            f = r[kind]
            reads = f["reads"]
            if kind == "dynamodb":
                read = f"{f['items_read']} ({reads.get('index entries', 0)} index entries + {reads.get('items read back', 0)} items read back)"
            elif kind == "s3":
                read = (
                    f"{f['items_read']:,} object versions, {_mb(reads.get('bytes read', 0))} MB "
                    f"({reads.get('versions listed', 0):,} versions listed)"
                )
            elif kind == "s3_indexed":
                read = (
                    f"{f['items_read']:,} object versions, {_mb(reads.get('bytes read', 0))} MB "
                    f"({reads.get('objects named by the index', 0)} named by the index, "
                    f"{reads.get('unindexed objects', 0)} unindexed; {reads.get('versions listed', 0):,} versions listed)"
                )
            else:
                read = f"{f['items_read']} ({reads.get('users listed', 0)} listed + {reads.get('users read', 0)} read)"
            calls = sum(f["calls"].values())
            rows.append(
                f"| {store[kind]} | {kind.replace('_', ' ')} | {f['found']} / {f['erased']} | {read} | {calls}: {_listing(f['calls'])} "
                f"| {f['plan_find_s'] * 1000:.0f} | {f['step_s'] * 1000:.0f} |"
            )
    table = "\n".join(
        [
            "| store size | connector | found / erased | records read | AWS calls | plan's find (ms) | erase step (ms) |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    rewrite_rows = "\n".join(
        f"| {r['objects']:,} | {kind.replace('_', ' ')} | {r[kind]['rewritten_objects']} | {r[kind]['rewritten_bytes'] / 1000:.0f} "
        f"| {r[kind]['transfer_bytes'] / 1000:.0f} | {r[kind]['transfer_s'] * 1000:.0f} "
        f"| {r[kind]['transfer_bytes'] / 1_000_000 / r[kind]['transfer_s']:.1f} | {r[kind]['erase_s'] * 1000:.0f} |"
        for r in rounds
        for kind in ("s3", "s3_indexed")
        if r[kind]["transfer_s"] > 0
    )
    totals = ", ".join(f"{r['items']:,}/{r['objects']:,}/{r['users']:,}: {r['total_s']:.1f} s" for r in rounds)
    seeding = ", ".join(f"{r['seed_s']:.0f} s" for r in rounds)
    equal = "; ".join(
        f"{kind.replace('_', ' ')} records read: "
        + ", ".join(f"{r[kind]['items_read']} at {r[unit]:,} {unit}" for r in rounds)
        + (" (equal)" if len({r[kind]["items_read"] for r in rounds}) == 1 else " (**not equal**)")
        for kind, unit in FOLLOW_THE_SUBJECT.items()
    )
    keeping = "; ".join(_index_keeping(r) for r in rounds if r.get("index"))
    grows = ", ".join(f"{r['s3_indexed']['plan_find_s'] * 1000:.0f} ms at {r['objects']:,} objects" for r in rounds)
    s3_read = ", ".join(f"{r['s3']['items_read']:,} object versions at {r['objects']:,} objects" for r in rounds)
    held = (
        f"Checked by the bench itself (`check`): {equal}; S3 without the index {s3_read} (grows with the "
        "prefix, as said). Every round found and erased the subject's 20 items, the rows in 5 objects (in "
        "each bucket) and the user, and each connector's re-query found nothing left."
        if not problems
        else "**The bench's own check failed:** " + "; ".join(problems) + f". {equal}."
    )
    return f"""## Connectors: one subject erased across 100k items, 1,000 objects, 1,000 users

One subject erased by the connectors (bench/connectors_erasure.py) from stores in moto server (a
process of its own, as the local runner runs it): a DynamoDB table where the subject owns
{SUBJECT_ITEMS} items, found through a KEYS_ONLY GSI and each read back from the table (strongly
consistent); a versioned S3 bucket whose prefix holds JSON Lines objects of {ROWS_PER_OBJECT} rows
(about 64 KB), {SUBJECT_OBJECTS} of them holding {SUBJECT_ROWS_PER_OBJECT} rows of the subject's, and a
second bucket holding the same objects under a prefix declared `index: true` (a connector of its
own); a Cognito pool where the subject is one user, whose user id the identity graph carries to the
other three. The stores are seeded at the smaller size with one subject, who is erased, then topped up to
the full size with another. The run is the connector worker's (rightsdesk.connectors.execution)
without the state machine: the plan resolves the identities (every connector's find), then each
connector's step finds again, erases and re-queries (`base.erase_and_verify`), dependents first.
Receipts and step records, the worker's own writes, are not counted here. Calls: every AWS call of
the connector (local/calls.py's hook; a paginated call is one call a page). Records read: what the
answers held. One run, on a machine shared with other work: the times are indicative.

{table}

Found / erased: items, rows (S3) and users. Reads follow the subject's data in DynamoDB: the GSI
query names the subject's 20 items and each is read back from the table, in the plan's find and
again in the step's (20 index entries + 20 GetItem each), and the re-query after the deletes finds
no entry. In Cognito too: ListUsers with an email filter answers the one user (Cognito filters the
pool; the connector reads one user), and AdminGetUser reads it again before the delete.

**S3 without the index does not**: every find lists and reads every version of every object under
the prefix, and a run makes three finds (the plan's, the step's, the re-query): 3 x the objects,
plus the rewrite's 2 reads per object holding the subject (its current version, and the older
version it then deletes). The objects and bytes read grow with the prefix.

**S3 with the index** (`index: true`, rightsdesk.connectors.s3_index) follows the subject again: a
second bucket holds the same objects under a prefix declared `index: true`. The objects of the
first round were there before the index: `S3Index.backfill()` (what `rightsdesk connectors index`
runs) indexed them and marked the prefix ready; the objects written afterwards were synced one by
one as they were written (`S3Index.sync`, the indexer's work on an object-created notification,
called in-process: S3IndexQueue and the indexer's Lambda would add polling and a cold start, no
index work), and so were the objects each erasure rewrote. A find then asks the index (a GetItem
of the prefix's readiness, a Query of the subject's entries, a BatchGetItem of the objects they
name, a Query of the unindexed ones, a KMS Decrypt per object key the process has not unsealed yet)
and lists and reads only those objects: the plan's find and the step's read the 5 objects, the
rewrite reads 2 versions of each, and the erasure drops the subject's entries, so the re-query
reads none. Its calls and reads are the same at both sizes.

Keeping the index (not measured above): {keeping}.

Locally its wall time may still grow with the store, as DynamoDB's does (its plan's find:
{grows}): moto answers a Query by walking every item of the table (the index's entries are about
8 an object: 7 other users and the object's own item, in the stack's table), and a
ListObjectVersions of one key by copying every version in the bucket. DynamoDB reads one partition
a Query and S3 lists a prefix from its index, so on AWS neither grows with the store. Its erase
also does the index's own work: for each object rewritten, the prefix's readiness read again and
the subject's entry dropped (an UpdateItem of the object's item, a DeleteItem of the entry).

S3 rewrite: the erase reads each object holding the subject, writes it back without the rows
(`PutObject IfMatch` on the ETag read), lists the object's versions, and reads and deletes the
older version that still held the rows. Throughput is the bytes its GetObject (body included) and
PutObject calls moved over the time spent in them; the whole erase adds the version listing and
the deletes.

| objects in prefix | connector | objects rewritten | KB in those objects | KB read + written | in GetObject + PutObject (ms) | rewrite MB/s | whole erase (ms) |
|---|---|---|---|---|---|---|---|
{rewrite_rows}

What grows with the store here is moto's, not the connector's: moto answers a GSI query by going
through every item of the table, and a ListObjectVersions (even for one key's prefix) by copying
every version in the bucket, so DynamoDB's find and the S3 erase's version listing take longer at
the larger size although the connector's calls and records read do not change (DynamoDB reads a
GSI partition; S3 lists a prefix from its index).

Whole erasure (plan + steps), items/objects/users: {totals}.
Seeding (not measured above): {seeding}.

{held}
"""


def run_isolated(sizes: tuple[tuple[int, int, int], ...] = SIZES) -> list[dict]:
    """measure() in a fresh interpreter with a moto process of its own, whose calls are recorded
    (local/calls.py hooks botocore for the rest of the process: the other sections must not pay)."""
    import os
    import subprocess
    import sys
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.connectors_erasure",
                str(Path(folder) / "calls.jsonl"),
                ";".join(",".join(map(str, size)) for size in sizes),
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "RIGHTSDESK_HASH_KEY": os.environ.get("RIGHTSDESK_HASH_KEY", "bench-hash-key")},
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _main(argv: list[str]) -> None:
    import sys

    from local import calls
    from local.cloud import fake_aws_environment
    from local.moto_process import MotoProcess

    recorded = Path(argv[0])
    # Other sizes for a quick look: "2000,20,20;4000,40,40" (items,objects,users per round).
    sizes = tuple(tuple(int(n) for n in size.split(",")) for size in argv[1].split(";")) if len(argv) > 1 else SIZES
    moto = MotoProcess("127.0.0.1", 0)
    moto.start()
    try:
        fake_aws_environment(moto.url)
        calls.install(str(recorded))
        rounds = measure(recorded, sizes)  # type: ignore[arg-type]
    finally:
        moto.shut()
    sys.stdout.write("\n" + json.dumps(rounds) + "\n")


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
