"""The connectors' erasure bench (bench/connectors_erasure.py, part of `make bench`) at small sizes:
one subject erased across a DynamoDB table, an S3 prefix and a Cognito pool in a moto process of its
own, twice, the stores grown in between. What the DynamoDB and Cognito connectors read follows the
subject (the same at both sizes); what the S3 connector reads without an index follows the prefix.
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
        assert measured["s3"]["rewritten_objects"] == 5
        assert measured["cognito"]["erased"] == 1
        assert all(measured[kind]["remaining"] == 0 for kind in ("dynamodb", "s3", "cognito"))


def test_dynamodb_reads_follow_the_subject_and_s3_reads_follow_the_prefix(rounds):
    small, large = rounds
    # The plan's find and the step's: 20 GSI entries and 20 items read back each; none after.
    assert small["dynamodb"]["reads"] == large["dynamodb"]["reads"] == {"index entries": 40, "items read back": 40}
    assert small["dynamodb"]["calls"] == {"dynamodb.Query": 3, "dynamodb.GetItem": 40, "dynamodb.DeleteItem": 20}
    assert small["cognito"]["items_read"] == large["cognito"]["items_read"]
    # Three finds read every object, and the rewrite reads 2 versions of each of the 5.
    assert small["s3"]["items_read"] == 3 * 10 + 10
    assert large["s3"]["items_read"] == 3 * 30 + 10


def test_the_section_says_what_grows_and_that_no_s3_index_was_measured(rounds):
    text = connectors_erasure.section(rounds)
    assert "dynamodb records read: 80 at 300 items, 80 at 900 items (equal)" in text
    assert "does not exist\nin this code yet" in text
    unequal = [dict(rounds[0]), dict(rounds[1])]
    unequal[1]["dynamodb"] = {**rounds[1]["dynamodb"], "items_read": 81}
    assert "**The bench's own check failed:**" in connectors_erasure.section(unequal)
