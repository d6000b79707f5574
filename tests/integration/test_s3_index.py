"""The S3 index end to end on the local runner: the bucket's object notifications reach S3IndexQueue
(moto's S3 sends them, as the bucket's notification configuration says), the runner's poller hands
them to S3IndexerFunction, which indexes each object through the connector's role; an erasure then
finds the subject's rows through the index, reading only the objects it names, and takes their
entries with it. The module's own stack: connectors are stack-wide."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.support.flows import wait_for

pytestmark = pytest.mark.integration

SITE = "indexed"
BUCKET = "indexed-transcripts"
CONNECTOR = "indexed-chats"
TABLE = "rightsdesk-local-RightsTable"
GRACE_SECONDS = 24 * 3600
OTHERS = 8  # objects under the prefix without the subject
PERSONAL: set[str] = set()  # addresses and object keys (keys may embed ids): never in a log


@pytest.fixture(scope="module")
def calls_path(tmp_path_factory):
    return tmp_path_factory.mktemp("calls") / "calls.jsonl"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, calls_path):
    from tests.support.stack import start_stack

    running = start_stack(
        tmp_path_factory.mktemp("s3-index-stack"), env={"RIGHTSDESK_LOCAL_RECORD_CALLS": str(calls_path)}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def bucket(stack, tmp_path_factory) -> str:
    """The operator's site, its bucket sending notifications to the stack's queue, and the indexed
    connector added, tested, backfilled and enabled with the CLI."""
    stack.cli(
        "controllers", "add", "--name", "Indexed Platform", "--site", SITE, "--contact", "privacy@indexed.test",
        "--delivery", "internal", "--id", "ctl_indexed",
    )  # fmt: skip
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    queue_url = stack.health()["resources"]["S3IndexQueue"]["name"]
    queue_arn = stack.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "rightsdesk-index",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "chats/"}]}},
                }
            ]
        },
    )
    stack.drain()  # S3's test event
    path = tmp_path_factory.mktemp("connectors") / "chats.json"
    path.write_text(
        json.dumps(
            {
                "kind": "s3",
                "id": CONNECTOR,
                "role_arn": f"arn:aws:iam::123456789012:role/rightsdesk-connector-{CONNECTOR}",
                "bucket": BUCKET,
                "row_files": [
                    {"prefix": "chats/", "format": "jsonl", "field": "email", "identity": "email", "index": True}
                ],
            }
        )
    )
    stack.cli("connectors", "add", "--file", str(path))
    assert stack.cli_json("connectors", "test", CONNECTOR)["test"]["ok"]
    assert stack.cli_json("connectors", "index", CONNECTOR)["index"]["objects"] == 0
    stack.cli("connectors", "enable", CONNECTOR)
    return BUCKET


def index_items(stack, part: str) -> list[dict]:
    return stack.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"S3IDX#{CONNECTOR}#{part}"}},
        ConsistentRead=True,
    )["Items"]


def rows(email: str, *others: str) -> bytes:
    return "".join(json.dumps({"email": who, "text": "hello"}) + "\n" for who in (email, *others)).encode()


def ask(stack, email: str, kind: str) -> tuple[str, str]:
    submitted = stack.post("/v1/requests", json={"site": SITE, "type": kind, "email": email})
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["request_id"]
    mail = wait_for(
        lambda: next((m for m in stack.outbox() if email in m["to"] and f"/verify/{request_id}" in m["text"]), None),
        "the verification code",
    )
    code = re.search(r"\b(\d{6})\b", mail["text"]).group(1)
    verified = stack.post(f"/v1/requests/{request_id}/verify", json={"code": code})
    assert verified.status_code == 200, verified.text
    return request_id, verified.json()["status_token"]


def run_status(stack, request_id: str) -> str | None:
    items = stack.client("dynamodb").query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": f"REQ#{request_id}"}, ":e": {"S": "EXECUTION#"}},
        ScanIndexForward=False,
    )["Items"]
    return items[0]["status"]["S"] if items else None


def test_put_object_is_indexed_and_the_erasure_finds_the_subject_through_the_index(stack, bucket, calls_path):
    tag = uuid.uuid4().hex[:8]
    email = f"indexed-{tag}@example.org"
    PERSONAL.update({email, f"chats/{tag}/mine.jsonl"})
    s3 = stack.client("s3")
    for n in range(OTHERS):
        s3.put_object(Bucket=bucket, Key=f"chats/{tag}/other-{n}.jsonl", Body=rows(f"other-{n}-{tag}@example.org"))
    s3.put_object(Bucket=bucket, Key=f"chats/{tag}/mine.jsonl", Body=rows(email, f"friend-{tag}@example.org"))
    wait_for(lambda: len(index_items(stack, "OBJECTS")) >= OTHERS + 1, "the indexer to index every object")
    objects = index_items(stack, "OBJECTS")
    assert {item["state"]["S"] for item in objects} == {"indexed"}
    assert all(f"{tag}" not in json.dumps(item) for item in objects), "keys are sealed, never in the clear"

    request_id, token = ask(stack, email, "erasure")
    wait_for(lambda: run_status(stack, request_id) == "waiting", "the run to wait out the grace period")
    calls_path.write_text("")  # count the run's calls only
    stack.advance_clock(GRACE_SECONDS + 60)
    stack.run("ConnectorWorkerFunction")
    wait_for(lambda: run_status(stack, request_id) in ("succeeded", "parked"), "the run to end", timeout=60)
    assert run_status(stack, request_id) == "succeeded"
    body = s3.get_object(Bucket=bucket, Key=f"chats/{tag}/mine.jsonl")["Body"].read().decode()
    assert email not in body and f"friend-{tag}@example.org" in body

    calls = [json.loads(line) for line in calls_path.read_text().splitlines() if line.strip()]
    worker_reads = [c for c in calls if c["function"] == "ConnectorWorkerFunction" and c["service"] == "s3"]
    gets = sum(1 for c in worker_reads if c["action"] == "GetObject")
    # The find (plan), the erasure's find, its rewrite's read and the verification: the one object
    # the index names each time, never the other objects under the prefix.
    assert 0 < gets < OTHERS, worker_reads
    assert not any(c["action"] in ("ListObjects", "ListObjectsV2") for c in worker_reads)

    # the rewrite's own notification re-indexed the object for the friend; the subject is gone
    stack.drain()
    mine = [item for item in index_items(stack, "OBJECTS") if len(item.get("identities", {}).get("SS", [])) == 1]
    assert mine, "the rewritten object lists only the friend now"


def test_a_deleted_object_takes_its_entries(stack, bucket):
    tag = uuid.uuid4().hex[:8]
    s3 = stack.client("s3")
    before = len(index_items(stack, "OBJECTS"))
    s3.put_object(Bucket=bucket, Key=f"chats/{tag}/gone.jsonl", Body=rows(f"gone-{tag}@example.org"))
    wait_for(lambda: len(index_items(stack, "OBJECTS")) == before + 1, "the object to be indexed")
    s3.delete_object(Bucket=bucket, Key=f"chats/{tag}/gone.jsonl")
    wait_for(lambda: len(index_items(stack, "OBJECTS")) == before, "the removal to drop the object's entries")


def test_the_indexers_table_and_sealing_calls_are_granted_and_stay_in_its_key_space(stack, calls_path):
    from local.template import read as read_template
    from tests.integration.test_granted_calls import TEMPLATE, allowed

    template = read_template(TEMPLATE)
    calls = [json.loads(line) for line in calls_path.read_text().splitlines() if line.strip()]
    indexer = [c for c in calls if c["function"] == "S3IndexerFunction"]
    assert indexer, "the indexer ran"
    refused = [
        c
        for c in indexer
        if c["service"] in ("dynamodb", "kms")
        and c["action"] in ({"Encrypt", "Decrypt"} if c["service"] == "kms" else {c["action"]})
        and not allowed(template, c)
    ]
    assert refused == []


def test_no_log_names_a_subject_or_an_object_key(stack):
    logs = stack.logs()
    assert PERSONAL, "the tests above ran"
    assert [value for value in PERSONAL if value in logs] == []
