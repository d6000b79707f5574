"""Every patch of moto's internals lives in local/moto_patches.py, which refuses any moto but the pinned one."""

from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

import pytest

from local import moto_patches

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_moto_is_the_pinned_one():
    assert metadata.version("moto") == moto_patches.pinned_moto_version()


@pytest.mark.parametrize("installed", ["5.2.6", "5.3.0", None])
def test_another_moto_is_refused_with_what_to_do(installed):
    with pytest.raises(moto_patches.MotoVersionMismatch) as refused:
        moto_patches.check_moto_version(installed, "5.2.5")
    message = str(refused.value)
    assert "5.2.5" in message and "make install" in message and "local/moto_patches.py" in message
    assert (installed or "no moto") in message
    moto_patches.check_moto_version("5.2.5", "5.2.5")


def test_constraints_without_a_moto_pin_are_refused(tmp_path):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# moto==1.0 in a comment is no pin\nmotor==3.0\n")
    with pytest.raises(moto_patches.MotoVersionMismatch, match="pins no moto"):
        moto_patches.pinned_moto_version(constraints)
    constraints.write_text("motor==3.0\nmoto==5.2.5  # the local run's patches\n")
    assert moto_patches.pinned_moto_version(constraints) == "5.2.5"


def moto_patches_in(source: str) -> list[str]:
    """Lines that assign to (or setattr on) something imported from moto."""
    tree = ast.parse(source)
    from_moto = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "moto":
            from_moto |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            from_moto |= {
                (alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name.split(".")[0] == "moto"
            }

    def root(node: ast.AST) -> str | None:
        while isinstance(node, ast.Attribute):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    found = []
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            targets = [t for t in targets if isinstance(t, ast.Attribute)]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "setattr":
            targets = node.args[:1]
        found += [f"line {node.lineno}" for target in targets if root(target) in from_moto]
    return found


def test_the_check_finds_a_patch():
    """Positive control: the shapes the patches used to take elsewhere are found."""
    assert moto_patches_in("from moto.sqs import models as sqs\nsqs.unix_time = lambda: 0\n")
    assert moto_patches_in(
        "def f():\n    from moto.ses.responses import EmailResponse\n    EmailResponse.send_email = 1\n"
    )
    assert moto_patches_in("import moto.dynamodb.models\nmoto.dynamodb.models.DynamoDBBackend.x = 1\n")
    assert moto_patches_in(
        "from moto.core import common_models\ndef f(patch):\n"
        "    patch.setattr(common_models.BaseModel, '__new__', None)\n"
    )
    assert not moto_patches_in("from moto.backends import get_backend\nmessages = get_backend('ses')\n")


def test_no_module_but_moto_patches_changes_moto():
    files = [*(ROOT / "local").glob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    patched = {
        str(path.relative_to(ROOT)): moto_patches_in(path.read_text(encoding="utf-8"))
        for path in files
        if path.name != "moto_patches.py"
    }
    assert {path: lines for path, lines in patched.items() if lines} == {}


class _FakeQueue:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def wait_for_messages(self, timeout: float) -> None:
        self.waits.append(timeout)


class _FakeSqs:
    """moto's receive as the clock patch makes it: with a wait, it returns only once the injected
    clock has passed the poll's end, which a clock moved back never reaches."""

    def __init__(self, answers: list[list]) -> None:
        self.answers = answers
        self.queue = _FakeQueue()
        self.waits_asked: list[int] = []

    def get_queue(self, name: str) -> _FakeQueue:
        return self.queue


def _moto_receive(self: _FakeSqs, queue_name: str, count: int, wait_seconds_timeout: int, *rest) -> list:
    self.waits_asked.append(wait_seconds_timeout)
    if wait_seconds_timeout:
        raise AssertionError("a long poll on the injected clock: it could wait for days")
    return self.answers.pop(0) if self.answers else []


def test_a_long_poll_ends_on_the_wall_clock_whatever_the_injected_clock_does():
    receive = moto_patches.receive_on_the_wall_clock(_moto_receive)
    sqs = _FakeSqs(answers=[[], [], ["message"]])
    assert receive(sqs, "MailQueue", 10, 20, 30) == ["message"], "polls again until a message shows"
    assert sqs.waits_asked == [0, 0, 0] and len(sqs.queue.waits) == 2

    empty = _FakeSqs(answers=[])
    assert receive(empty, "MailQueue", 10, 0, 30) == [] and empty.queue.waits == [], "no wait asked: one look"


# An attribute of every DynamoDB type, binary and nested ones included.
EVERY_TYPE = {
    "n": {"N": "12.5"},
    "b": {"B": b"\x00\xffbytes"},
    "yes": {"BOOL": True},
    "none": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "l": {"L": [{"S": "x"}, {"N": "3"}, {"B": b"\x03"}]},
    "m": {"M": {"inner": {"S": "ü ✓"}, "deeper": {"M": {"n": {"N": "-1"}}}}},
}


def test_stream_records_carry_every_attribute_type_as_dynamodb_sends_them():
    """The local run's GetRecords answers without moto's generic serializer (too slow to read a
    whole stream under load); what a stream consumer reads through botocore must not change."""
    import boto3
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.server import ThreadedMotoServer

    moto_patches.stream_records_as_plain_json()
    assert getattr(DynamoDBStreamsHandler.get_records, "_plain_json", False)
    item = {"pk": {"S": "stream-types"}, **EVERY_TYPE}
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # mock_aws has no streams
    server.start()
    host, port = server.get_host_and_port()
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        dynamodb = session.client("dynamodb", region_name="eu-central-1", endpoint_url=f"http://{host}:{port}")
        table = dynamodb.create_table(
            TableName="stream-types",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        streams = session.client("dynamodbstreams", region_name="eu-central-1", endpoint_url=f"http://{host}:{port}")
        shard = streams.describe_stream(StreamArn=table["LatestStreamArn"])["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(
            StreamArn=table["LatestStreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        dynamodb.put_item(TableName="stream-types", Item=item)
        dynamodb.delete_item(TableName="stream-types", Key={"pk": item["pk"]})
        answer = streams.get_records(ShardIterator=iterator)
    finally:
        server.stop()
    inserted, removed = (record["dynamodb"] for record in answer["Records"])
    assert [record["eventName"] for record in answer["Records"]] == ["INSERT", "REMOVE"]
    assert inserted["NewImage"] == item and removed["OldImage"] == item
    assert inserted["Keys"] == removed["Keys"] == {"pk": {"S": "stream-types"}}
    assert inserted["ApproximateCreationDateTime"].year >= 2024
    assert answer["NextShardIterator"]


def _dynamodb_story(client) -> list:
    """Every data operation the handlers use, with the answers' variants: items of every type,
    returned values, missing items, pages, unprocessed keys, refused conditions and transactions."""
    from botocore.exceptions import ClientError

    client.create_table(
        TableName="answers",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    answers: list = []

    def call(operation: str, **params):
        try:
            answer = getattr(client, operation)(**params)
            answer.pop("ResponseMetadata", None)
            answers.append((operation, answer))
        except ClientError as error:
            answers.append((operation, error.response["Error"]["Code"], error.response.get("CancellationReasons")))

    key = {"pk": {"S": "p"}, "sk": {"S": "1"}}
    call("put_item", TableName="answers", Item={**key, "g": {"S": "G"}, **EVERY_TYPE}, ReturnConsumedCapacity="TOTAL")
    call("put_item", TableName="answers", Item={**key, "g": {"S": "G"}, **EVERY_TYPE}, ReturnValues="ALL_OLD")
    call("get_item", TableName="answers", Key=key)
    call("get_item", TableName="answers", Key={"pk": {"S": "p"}, "sk": {"S": "missing"}})
    call("get_item", TableName="answers", Key=key, ProjectionExpression="n, m.inner", ConsistentRead=True)
    call(
        "update_item",
        TableName="answers",
        Key=key,
        UpdateExpression="ADD tries :one SET note = :note",
        ExpressionAttributeValues={":one": {"N": "1"}, ":note": {"S": "hi"}},
        ReturnValues="ALL_NEW",
    )
    call(
        "update_item",
        TableName="answers",
        Key=key,
        UpdateExpression="ADD tries :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_OLD",
    )
    call(
        "update_item",
        TableName="answers",
        Key=key,
        UpdateExpression="SET note = :note",
        ConditionExpression="attribute_not_exists(pk)",
        ExpressionAttributeValues={":note": {"S": "refused"}},
    )
    call(
        "batch_write_item",
        RequestItems={
            "answers": [
                {"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"S": str(n)}, "g": {"S": "G"}}}} for n in range(2, 6)
            ]
        },
    )
    call(
        "query",
        TableName="answers",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        Limit=2,
    )
    call(
        "query",
        TableName="answers",
        IndexName="by_g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "G"}},
    )
    call("scan", TableName="answers", FilterExpression="attribute_exists(note)")
    call("batch_get_item", RequestItems={"answers": {"Keys": [key, {"pk": {"S": "p"}, "sk": {"S": "nope"}}]}})
    call(
        "transact_write_items",
        TransactItems=[
            {"Put": {"TableName": "answers", "Item": {"pk": {"S": "t"}, "sk": {"S": "1"}}}},
            {
                "Update": {
                    "TableName": "answers",
                    "Key": key,
                    "UpdateExpression": "SET note = :n",
                    "ExpressionAttributeValues": {":n": {"S": "in a transaction"}},
                }
            },
        ],
    )
    call(
        "transact_write_items",
        TransactItems=[
            {"ConditionCheck": {"TableName": "answers", "Key": key, "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": "answers", "Item": {"pk": {"S": "t"}, "sk": {"S": "2"}}}},
        ],
    )
    call("transact_get_items", TransactItems=[{"Get": {"TableName": "answers", "Key": key}}])
    call("delete_item", TableName="answers", Key=key, ReturnValues="ALL_OLD")
    call("delete_item", TableName="answers", Key=key, ReturnValues="ALL_OLD")
    return answers


_MOTO_SERVER = """
import sys
from moto.server import ThreadedMotoServer
if sys.argv[1] == "plain":
    from local import moto_patches
    moto_patches.dynamodb_items_as_plain_json()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
"""


def _story_on_a_moto_of_its_own(answers: str) -> list:
    """The story against a moto server in a process of its own (moto's backends are process-wide),
    answering `generic` (moto's serializer) or `plain` (local/moto_patches.py)."""
    import subprocess
    import sys

    import boto3

    repo = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(
        [sys.executable, "-c", _MOTO_SERVER, answers],
        cwd=repo,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline())
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        return _dynamodb_story(
            session.client("dynamodb", region_name="eu-central-1", endpoint_url=f"http://127.0.0.1:{port}")
        )
    finally:
        server.stdin.close()
        server.wait(timeout=10)


def test_dynamodb_answers_read_the_same_through_botocore_without_the_generic_serializer():
    """The local run answers DynamoDB's data operations without moto's generic serializer (a fifth of
    moto's time under load); every answer a handler can get must read the same through botocore."""
    generic, plain = _story_on_a_moto_of_its_own("generic"), _story_on_a_moto_of_its_own("plain")
    assert len(plain) == len(generic) == 18
    for (operation, *expected), (_, *got) in zip(generic, plain, strict=True):
        assert got == expected, operation


# Update and condition expressions through moto's backend, in a process of their own with or
# without moto_patches.update_expressions_parsed_and_checked_once and
# condition_expressions_parsed_once_per_request: every case twice (the second time the parsed trees
# and the expression-only checks are the kept ones), on an item that exists and on one that does
# not. Printed: what each write left in the table, or the refusal's class and message.
_UPDATES = r"""
import json, sys
if sys.argv[1] == "patched":
    from local import moto_patches
    moto_patches.update_expressions_parsed_and_checked_once()
    moto_patches.condition_expressions_parsed_once_per_request()
from moto.dynamodb.models import DynamoDBBackend

backend = DynamoDBBackend("eu-west-1", "123456789012")
backend.create_table(
    "t", attr=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    schema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    throughput=None, indexes=[], global_indexes=[], streams=None, billing_mode="PAY_PER_REQUEST",
    sse_specification=None, tags=[], deletion_protection_enabled=False, warm_throughput=None,
)
thirteen = "SET " + ", ".join(f"#{i} = :{i}" for i in range(10)) + " REMOVE #gone ADD #n :one, #s :set"
names13 = {f"#{i}": f"f{i}" for i in range(10)} | {"#gone": "gone", "#n": "n", "#s": "tags"}
values13 = {f":{i}": {"S": f"v{i}"} for i in range(10)} | {":one": {"N": "1"}, ":set": {"SS": ["x"]}}
CASES = [
    (thirteen, names13, values13),
    ("SET #a = :a, #b = if_not_exists(#b, :zero) + :one, #l = list_append(if_not_exists(#l, :empty), :l)",
     {"#a": "a", "#b": "b", "#l": "l"}, {":a": {"S": "x"}, ":zero": {"N": "0"}, ":one": {"N": "1"},
     ":empty": {"L": []}, ":l": {"L": [{"S": "y"}]}}),
    ("SET #m.#k = :v", {"#m": "m", "#k": "k"}, {":v": {"S": "deep"}}),
    ("ADD #n :one ADD #o :one", {"#n": "n", "#o": "o"}, {":one": {"N": "1"}}),
    ("SET #a = :a REMOVE #b REMOVE #c", {"#a": "a", "#b": "b", "#c": "c"}, {":a": {"S": "x"}}),
    ("SET #a = :a SET #b = :a", {"#a": "a", "#b": "b"}, {":a": {"S": "x"}}),
    ("SET #a = :a, #b = :a", {"#a": "a", "#b": "a"}, {":a": {"S": "x"}}),
    ("SET #a = :a, #b = :a", {"#a": "a", "#b": "sk"}, {":a": {"S": "x"}}),
    ("SET #a = :a, #b = :a", {"#a": "a", "#b": "b"}, {":a": {"S": "x"}}),
    ("SET a.b = :a, a = :a", None, {":a": {"S": "x"}}),
    ("ADD #s :n", {"#s": "f1"}, {":n": {"N": "1"}}),
    ("SET #a = :missing", {"#a": "a"}, {":a": {"S": "x"}}),
    ("SET #a = :a + :a", {"#a": "a"}, {":a": {"S": "x"}}),
    ("SET #k = :a", {"#k": "pk"}, {":a": {"S": "x"}}),
    ("SET #a = :a", {"#a": "a"}, {":a": {"S": ""}}),
    ("DELETE #s :set", {"#s": "tags"}, {":set": {"SS": ["x"]}}),
]
out = []
for round_ in (1, 2):
    for n, (expression, names, values) in enumerate(CASES):
        for pk in ("existing", f"new-{round_}-{n}"):
            key = {"pk": {"S": pk}, "sk": {"S": "x"}}
            try:
                backend.update_item("t", key, expression, names, values)
                item = backend.get_item("t", key)
                out.append(item.to_json()["Attributes"] if item else None)
            except Exception as error:
                out.append([type(error).__name__, str(error)])
backend.put_item("t", {"pk": {"S": "c"}, "sk": {"S": "x"}, "s": {"S": "forwarded"}, "n": {"N": "3"}, "t": {"S": "abc"}})
CONDITIONS = lambda round_: [  # noqa: E731
    ("attribute_not_exists(pk)", None, None),
    ("#n = :n", {"#n": "n"}, {":n": {"N": str(2 + round_)}}),  # holds in the first round only
    ("attribute_exists(#s) AND #s = :s", {"#s": "s"}, {":s": {"S": "forwarded"}}),
    ("#s = :s", {"#s": "s"}, {":s": {"S": "verified"}}),
    ("#n < :max OR NOT begins_with(#t, :p)", {"#n": "n", "#t": "t"}, {":max": {"N": "5"}, ":p": {"S": "ab"}}),
    ("(#n BETWEEN :a AND :b) AND #s IN (:s, :x) AND size(#t) = :three",
     {"#n": "n", "#s": "s", "#t": "t"},
     {":a": {"N": "1"}, ":b": {"N": "2"}, ":s": {"S": "forwarded"}, ":x": {"S": "y"}, ":three": {"N": "3"}}),
    ("#s = = :s", {"#s": "s"}, {":s": {"S": "forwarded"}}),
    ("#s = :missing", {"#s": "s"}, {":s": {"S": "forwarded"}}),
    ("#s = :s", {"#s": "s", "#unused": "u"}, {":s": {"S": "forwarded"}}),
]
for round_ in (1, 2):
    for condition, names, values in CONDITIONS(round_):
        for pk in ("c", "absent"):
            key = {"pk": {"S": pk}, "sk": {"S": "x"}}
            try:
                backend.update_item("t", key, "SET #w = :w", {**(names or {}), "#w": "w"},
                                    {**(values or {}), ":w": {"N": str(round_)}}, condition_expression=condition)
                item = backend.get_item("t", key)
                out.append(item.to_json()["Attributes"] if item else None)
            except Exception as error:
                out.append([type(error).__name__, str(error)])
            try:
                backend.put_item(
                    "t", {**key, "n": {"N": "3"}, "p": {"N": str(round_)}}, condition_expression=condition,
                    expression_attribute_names=names, expression_attribute_values=values,
                )
                out.append(backend.get_item("t", key).to_json()["Attributes"])
            except Exception as error:
                out.append([type(error).__name__, str(error)])
print(json.dumps(out, sort_keys=True))
"""


def _updates(mode: str) -> list:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _UPDATES, mode], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout)


def test_update_and_condition_expressions_are_accepted_refused_and_applied_as_moto_does_once_parsed_and_checked_once():
    moto_way, patched = _updates("moto"), _updates("patched")
    assert patched == moto_way
    refusals = {tuple(answer) for answer in moto_way if isinstance(answer, list)}
    # Positive control: the table holds what each of the expression-only checks refuses, and more.
    assert {kind for kind, _ in refusals} >= {
        "TooManyClauses",
        "DuplicateUpdateExpression",
        "UpdateHashRangeKeyException",
        "IncorrectDataType",
        "ExpressionAttributeValueNotDefined",
        "ConditionalCheckFailed",
    }, refusals
    assert sum(isinstance(answer, dict) for answer in moto_way) > 20, "and it holds writes that were made"


def test_request_ids_and_receipt_handles_keep_their_alphabet_and_length_when_drawn_at_once():
    """Run in a process of its own: the patch replaces moto's functions for the whole process."""
    import json
    import subprocess
    import sys

    script = (
        "import json\n"
        "from local import moto_patches\n"
        "moto_patches.random_ids_drawn_at_once()\n"
        "from moto.core import responses\n"
        "from moto.sqs import models\n"
        "headers = {}\n"
        "ids = [responses.gen_amzn_requestid_long(headers) for _ in range(50)]\n"
        "handles = [models.generate_receipt_handle() for _ in range(50)]\n"
        "print(json.dumps([ids, handles, headers]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    ids, handles, headers = json.loads(done.stdout)
    assert all(len(i) == 52 and i.isascii() and i.isalnum() for i in ids) and len(set(ids)) == 50
    assert (
        all(len(h) == 185 and h.isascii() and h.isalpha() and h.islower() for h in handles) and len(set(handles)) == 50
    )
    assert headers == {"x-amzn-requestid": ids[-1]}


# SendMessage through moto's SQS backend, with or without moto_patches._sqs_send_reads_no_queue_counts:
# a standard queue and FIFO queues with and without content-based deduplication. Printed: each
# send's outcome (deduplication id, group, delay) or refusal, and what each queue then holds.
_SENDS = r"""
import json, sys
if sys.argv[1] == "patched":
    from local import moto_patches
    moto_patches._sqs_send_reads_no_queue_counts()
from moto.sqs.models import sqs_backends

backend = sqs_backends["123456789012"]["eu-west-1"]
backend.create_queue("plain")
backend.create_queue("dedup.fifo", FifoQueue="true", ContentBasedDeduplication="true")
backend.create_queue("explicit.fifo", FifoQueue="true")
SENDS = [
    ("plain", "a", {}), ("plain", "a", {"delay_seconds": 5}), ("plain", "b", {"delay_seconds": 901}),
    ("plain", "c", {"message_attributes": {"k": {"DataType": "String", "StringValue": "v"}}}),
    ("dedup.fifo", "same", {"group_id": "g"}), ("dedup.fifo", "same", {"group_id": "g"}),
    ("dedup.fifo", "other", {"group_id": "g", "deduplication_id": "d1"}), ("dedup.fifo", "x", {}),
    ("explicit.fifo", "y", {"group_id": "g"}), ("explicit.fifo", "y", {"group_id": "g", "deduplication_id": "d"}),
    ("explicit.fifo", "z", {"group_id": "g", "deduplication_id": "d"}), ("explicit.fifo", "w", {"delay_seconds": 3}),
]
out = []
for queue, body, options in SENDS:
    try:
        message = backend.send_message(queue, body, **options)
        out.append([message.body, message.deduplication_id, message.group_id, bool(message.sequence_number)])
    except Exception as error:
        out.append([type(error).__name__, str(error)])
for queue in ("plain", "dedup.fifo", "explicit.fifo"):
    out.append(sorted(m.body for m in backend.get_queue(queue)._messages))
print(json.dumps(out))
"""


def test_sqs_sends_are_taken_deduplicated_and_refused_as_moto_does_without_counting_the_queue():
    import json
    import subprocess
    import sys

    def sends(mode: str) -> list:
        done = subprocess.run(
            [sys.executable, "-c", _SENDS, mode], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
        )
        return json.loads(done.stdout)

    moto_way = sends("moto")
    assert sends("patched") == moto_way
    assert moto_way[-2] == ["other", "same"], "positive control: content-based deduplication took one of two"
    assert any(answer[0] == "InvalidParameterValue" for answer in moto_way[:-3])
