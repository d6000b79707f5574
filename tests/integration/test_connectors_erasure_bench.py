"""The connectors' erasure bench (bench/connectors_erasure.py, part of `make bench`) at small sizes:
one subject erased across a DynamoDB table, an S3 prefix and a Cognito pool in a moto process of its
own, twice, the stores grown in between. What the DynamoDB and Cognito connectors read follows the
subject (the same at both sizes); what the S3 connector reads without an index follows the prefix,
and what it reads with one (the same objects in a second bucket, the prefix declared `index: true`,
backfilled, later objects synced as written) follows the subject again.
"""

from __future__ import annotations

import pytest

from bench import connectors_erasure

pytestmark = pytest.mark.integration

SMALL = ((300, 10, 6), (900, 30, 18))  # (items, objects, users) per round


@pytest.fixture(scope="module")
def rounds() -> list[dict]:
    return connectors_erasure.run_isolated(SMALL)


def test_every_round_erases_the_subject_everywhere_and_the_bench_check_holds(rounds):
    assert connectors_erasure.check(rounds) == []
    for measured in rounds:
        assert (measured["dynamodb"]["found"], measured["dynamodb"]["erased"]) == (20, 20)
        assert measured["s3"]["rewritten_objects"] == measured["s3_indexed"]["rewritten_objects"] == 5
        assert measured["s3_indexed"]["found"] == measured["s3"]["found"] == 5 * 3
        assert measured["cognito"]["erased"] == 1
        assert all(measured[kind]["remaining"] == 0 for kind in ("dynamodb", "s3", "s3_indexed", "cognito"))


def test_dynamodb_reads_follow_the_subject_and_s3_reads_follow_the_prefix(rounds):
    small, large = rounds
    # The plan's find and the step's: 20 GSI entries and 20 items read back each; none after.
    assert small["dynamodb"]["reads"] == large["dynamodb"]["reads"] == {"index entries": 40, "items read back": 40}
    assert small["dynamodb"]["calls"] == {"dynamodb.Query": 3, "dynamodb.GetItem": 40, "dynamodb.DeleteItem": 20}
    assert small["cognito"]["items_read"] == large["cognito"]["items_read"]
    # Three finds read every object, and the rewrite reads 2 versions of each of the 5.
    assert small["s3"]["items_read"] == 3 * 10 + 10
    assert large["s3"]["items_read"] == 3 * 30 + 10


def test_indexed_s3_reads_follow_the_subject_at_both_sizes(rounds):
    small, large = rounds
    # The plan's find and the step's read the 5 objects the index names, the rewrite 2 versions
    # of each; the erasure dropped the subject's entries, so the re-query reads none.
    assert small["s3_indexed"]["items_read"] == large["s3_indexed"]["items_read"] == 2 * 5 + 2 * 5
    assert small["s3_indexed"]["reads"] == large["s3_indexed"]["reads"]
    assert large["s3_indexed"]["reads"]["objects named by the index"] == 2 * 5
    assert large["s3_indexed"]["reads"]["unindexed objects"] == 0
    # Its calls do not grow with the prefix either (the index's DynamoDB and KMS calls included).
    assert small["s3_indexed"]["calls"] == large["s3_indexed"]["calls"]
    assert large["s3_indexed"]["calls"]["s3.GetObject"] == 20 < large["s3"]["calls"]["s3.GetObject"]
    # The first round's objects were backfilled, the second's synced as they were written.
    assert small["index"]["backfilled"] == 10 and small["index"]["synced"] == 0
    assert large["index"]["synced"] == 20 and "backfilled" not in large["index"]


def test_the_section_says_what_grows_and_what_follows_the_subject(rounds):
    text = connectors_erasure.section(rounds)
    assert "dynamodb records read: 80 at 300 items, 80 at 900 items (equal)" in text
    assert "s3 indexed records read: 20 at 10 objects, 20 at 30 objects (equal)" in text
    assert "does not exist" not in text
    assert "moto answers a Query by walking every item of the table" in text
    for kind in ("dynamodb", "s3_indexed"):
        unequal = [dict(rounds[0]), dict(rounds[1])]
        unequal[1][kind] = {**rounds[1][kind], "items_read": rounds[1][kind]["items_read"] + 1}
        assert connectors_erasure.check(unequal) != []
        assert "**The bench's own check failed:**" in connectors_erasure.section(unequal)
