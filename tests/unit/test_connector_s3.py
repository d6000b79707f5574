"""The S3 connector against moto: per-subject prefixes and JSON Lines / CSV rewrites, in versioned
and unversioned buckets; conditional rewrites that lose no row written meanwhile; the size limit."""

from __future__ import annotations

import csv
import io
import json

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from rightsdesk.connectors import base, build
from rightsdesk.connectors.definitions import RowFiles, parse_definition
from rightsdesk.connectors.s3 import _Rows
from tests.support.denied import deny

ROLE = "arn:aws:iam::123456789012:role/rightsdesk-connector-transcripts"
BUCKET = "chat-transcripts"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-central-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        yield client


@pytest.fixture
def versioned(s3):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def connector(on_read=None, **overrides):
    document = {
        "kind": "s3",
        "id": "transcripts",
        "role_arn": ROLE,
        "enabled": True,
        "bucket": BUCKET,
        "subject_prefixes": ["users/{user_id}/"],
        "row_files": [
            {"prefix": "chats/", "format": "jsonl", "field": "user", "identity": "user_id"},
            {"prefix": "exports/", "format": "csv", "field": "email", "identity": "email"},
        ],
    }
    document.update(overrides)
    definition = parse_definition(document)
    return build(
        definition,
        "req_s3_1",
        session_factory=lambda d, r: boto3.session.Session(region_name="eu-central-1"),
        on_read=on_read,
    )


def put(client, key: str, body: str) -> None:
    client.put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def text(client, key: str, version: str | None = None) -> str:
    extra = {"VersionId": version} if version else {}
    return client.get_object(Bucket=BUCKET, Key=key, **extra)["Body"].read().decode()


def versions(client, prefix: str) -> list[dict]:
    answer = client.list_object_versions(Bucket=BUCKET, Prefix=prefix)
    return answer.get("Versions", []) + answer.get("DeleteMarkers", [])


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


SUBJECT = {"user_id": "u-1", "email": "Ada@Example.com"}


def test_a_subjects_prefix_goes_with_every_version_and_marker_and_only_theirs(versioned):
    put(versioned, "users/u-1/avatar.png", "v1")
    put(versioned, "users/u-1/avatar.png", "v2")
    put(versioned, "users/u-1/old.txt", "gone soon")
    versioned.delete_object(Bucket=BUCKET, Key="users/u-1/old.txt")  # a delete marker still names them
    put(versioned, "users/u-10/avatar.png", "another user whose id starts alike")
    subject = connector(row_files=[])
    found = subject.find(SUBJECT)
    assert found.count == 4  # two versions, one deleted object and its marker
    outcome = base.erase_and_verify(subject, SUBJECT)
    assert (outcome.result, outcome.erased, outcome.remaining) == ("done", 4, 0)
    assert versions(versioned, "users/u-1/") == []
    assert text(versioned, "users/u-10/avatar.png") == "another user whose id starts alike"


def test_jsonl_rows_are_rewritten_away_and_older_versions_holding_them_deleted(versioned):
    put(versioned, "chats/2026-01.jsonl", jsonl({"user": "u-2", "m": "hi"}))
    old_clean = versions(versioned, "chats/2026-01.jsonl")[0]["VersionId"]
    put(versioned, "chats/2026-01.jsonl", jsonl({"user": "u-2", "m": "hi"}, {"user": "u-1", "m": "mine"}))
    others = '{"user": "u-3",   "m": "spacing kept"}\n\n{"user": "u-2", "m": "bye"}\n'
    put(versioned, "chats/2026-02.jsonl", others)
    # only an older version of this one holds the subject
    put(versioned, "chats/2026-03.jsonl", jsonl({"user": "u-1", "m": "old"}))
    put(versioned, "chats/2026-03.jsonl", jsonl({"user": "u-4", "m": "new"}))
    subject = connector(
        subject_prefixes=["users/{user_id}/"],
        row_files=[{"prefix": "chats/", "format": "jsonl", "field": "user", "identity": "user_id"}],
    )
    found = subject.find(SUBJECT)
    assert found.count == 2
    assert subject.export(found) == [{"object": "chats/2026-01.jsonl", "row": {"user": "u-1", "m": "mine"}}]
    outcome = base.erase_and_verify(subject, SUBJECT)
    assert (outcome.result, outcome.found, outcome.erased, outcome.remaining) == ("done", 2, 2, 0)
    assert text(versioned, "chats/2026-01.jsonl") == jsonl({"user": "u-2", "m": "hi"})
    assert text(versioned, "chats/2026-02.jsonl") == others
    assert text(versioned, "chats/2026-03.jsonl") == jsonl({"user": "u-4", "m": "new"})
    # the version that never held the subject is kept; every one that did is gone
    kept = {v["VersionId"] for v in versions(versioned, "chats/2026-01.jsonl")}
    assert old_clean in kept and len(kept) == 2
    assert len(versions(versioned, "chats/2026-03.jsonl")) == 1
    again = base.erase_and_verify(subject, SUBJECT)
    assert (again.result, again.remaining) == ("nothing_found", 0)


def test_csv_records_match_on_their_column_and_the_rest_stays_byte_for_byte(s3):
    body = (
        "email,note\r\n"
        'ada@example.com,"first\r\nline two"\r\n'
        'bob@example.com,"quoted, with comma"\r\n'
        "ADA@example.com,second\r\n"
        "carol@example.com,\r\n"
    )
    put(s3, "exports/contacts.csv", body)
    subject = connector(
        subject_prefixes=[], row_files=[{"prefix": "exports/", "format": "csv", "field": "email", "identity": "email"}]
    )
    found = subject.find(SUBJECT)
    assert [record.data["note"] for record in found.records] == ["first\r\nline two", "second"]
    outcome = base.erase_and_verify(subject, SUBJECT)
    assert (outcome.result, outcome.erased, outcome.remaining) == ("done", 2, 0)
    assert (
        text(s3, "exports/contacts.csv")
        == 'email,note\r\nbob@example.com,"quoted, with comma"\r\ncarol@example.com,\r\n'
    )


@pytest.mark.parametrize("bucket_versioning", ["Enabled", None])
def test_a_row_appended_between_read_and_rewrite_is_not_lost(s3, bucket_versioning):
    if bucket_versioning:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": bucket_versioning})
    put(s3, "chats/live.jsonl", jsonl({"user": "u-1", "m": "mine"}, {"user": "u-2", "m": "theirs"}))
    appended = []

    def append_meanwhile(key: str) -> None:
        if not appended:  # once: the writer appends while rightsdesk holds the old ETag
            appended.append(key)
            put(s3, key, text(s3, key) + jsonl({"user": "u-2", "m": "appended"}, {"user": "u-1", "m": "mine too"}))

    subject = connector(on_read=append_meanwhile, subject_prefixes=[])
    outcome = base.erase_and_verify(subject, SUBJECT)
    assert appended == ["chats/live.jsonl"]
    assert text(s3, "chats/live.jsonl") == jsonl({"user": "u-2", "m": "theirs"}, {"user": "u-2", "m": "appended"})
    assert (outcome.result, outcome.remaining) == ("done", 0)
    if bucket_versioning:  # every version that held the subject's rows is gone
        assert len(versions(s3, "chats/live.jsonl")) == 1


def test_an_object_that_keeps_changing_fails_after_the_attempts(s3):
    put(s3, "chats/busy.jsonl", jsonl({"user": "u-1", "m": "mine"}))

    def always_append(key: str) -> None:
        put(s3, key, text(s3, key) + jsonl({"user": "u-2", "m": "more"}))

    outcome = base.erase_and_verify(connector(on_read=always_append, subject_prefixes=[], rewrite_attempts=2), SUBJECT)
    assert outcome.result == "failed"
    assert outcome.failure == {
        "code": "rewrite_conflict",
        "key_hash": base.key_hash("transcripts", f"{BUCKET}/chats/busy.jsonl"),
    }


def test_an_object_over_the_size_limit_fails_naming_its_hashed_key(s3):
    put(s3, "chats/huge-u-1.jsonl", jsonl({"user": "u-1", "m": "x" * 2000}))
    outcome = base.erase_and_verify(connector(subject_prefixes=[], max_object_bytes=1000), SUBJECT)
    assert outcome.result == "failed"
    assert outcome.failure == {
        "code": "object_too_large",
        "key_hash": base.key_hash("transcripts", f"{BUCKET}/chats/huge-u-1.jsonl"),
    }
    assert "huge" not in outcome.to_json() and "u-1" not in outcome.to_json()
    assert "u-1" in text(s3, "chats/huge-u-1.jsonl")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x1f\x8b\x08\x00gzipped", "compressed_object"),
        (b"\xff\xfe not utf-8", "not_utf8"),
        (b'{"user": "u-1", "m": broken\n', "unreadable_row"),
    ],
)
def test_objects_that_cannot_be_read_safely_fail(s3, body, code):
    s3.put_object(Bucket=BUCKET, Key="chats/odd.jsonl", Body=body)
    outcome, _ = base.plan(connector(subject_prefixes=[]), SUBJECT)
    assert (outcome.result, outcome.failure["code"]) == ("failed", code)


def test_a_missing_csv_column_fails(s3):
    put(s3, "exports/other.csv", "name,city\r\nAda,Ljubljana\r\n")
    outcome, _ = base.plan(
        connector(
            subject_prefixes=[],
            row_files=[{"prefix": "exports/", "format": "csv", "field": "email", "identity": "email"}],
        ),
        SUBJECT,
    )
    assert outcome.failure["code"] == "csv_column_missing"


@pytest.mark.parametrize("value", ["", "../u-2", "a/b", ".."])
def test_an_identity_that_would_widen_a_prefix_is_refused(s3, value):
    outcome, _ = base.plan(connector(row_files=[]), {"user_id": value})
    assert (outcome.result, outcome.failure) == ("failed", {"code": "unsafe_identity_value"})


def test_the_ceiling_parks_before_any_rewrite(s3):
    put(s3, "chats/a.jsonl", jsonl(*({"user": "u-1", "m": n} for n in range(5))))
    outcome = base.erase_and_verify(connector(subject_prefixes=[], ceiling=4), SUBJECT)
    assert (outcome.result, outcome.found, outcome.erased) == ("parked_too_many", 5, 0)
    assert text(s3, "chats/a.jsonl").count("u-1") == 5


def test_export_of_prefix_objects_carries_their_content(s3):
    put(s3, "users/u-1/profile.json", '{"bio": "hello"}')
    subject = connector(row_files=[])
    assert subject.export(subject.find(SUBJECT)) == [
        {"object": "users/u-1/profile.json", "size": 16, "text": '{"bio": "hello"}'}
    ]


def test_the_outcome_names_objects_and_the_subject_by_keyed_hashes_only(versioned):
    put(versioned, "users/u-1/ada@example.com.txt", "x")
    put(versioned, "exports/c.csv", "email,n\r\nada@example.com,1\r\n")
    outcome = base.erase_and_verify(connector(), SUBJECT)
    assert outcome.result == "done" and len(outcome.touched) == 2
    for secret in ("u-1", "ada@example.com", "Ada@Example.com", "users/", "exports/"):
        assert secret.lower() not in outcome.to_json().lower()


# ------------------------------------------------------------------ rows: any content, kept byte for byte


_cells = st.text(alphabet=st.sampled_from('ab,"\r\n é;'), max_size=8)
_rows = st.lists(st.tuples(st.booleans(), _cells, _cells), max_size=8)


@settings(max_examples=200, deadline=None)
@given(rows=_rows, line_end=st.sampled_from(["\r\n", "\n"]))
def test_csv_split_keeps_every_other_record_exactly_whatever_it_holds(rows, line_end):
    def written(records):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=line_end)
        writer.writerow(["user", "a", "b"])
        writer.writerows(records)
        return out.getvalue()

    if line_end == "\n":  # Python's writer leaves a lone \r unquoted then: a record break to every reader
        rows = [(mine, a.replace("\r", ""), b.replace("\r", "")) for mine, a, b in rows]
    records = [["u-1" if mine else "u-2", a, b] for mine, a, b in rows]
    keep, theirs = _Rows(RowFiles(prefix="p/", format="csv", field="user", identity="user_id"), "u-1").split(
        written(records), "h"
    )
    assert "".join(keep) == written([r for r in records if r[0] != "u-1"])
    assert [(t["a"], t["b"]) for t in theirs] == [(r[1], r[2]) for r in records if r[0] == "u-1"]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.booleans(), st.text(max_size=10)), max_size=8))
def test_jsonl_split_keeps_every_other_line_exactly(rows):
    lines = [
        json.dumps({"user": "u-1" if mine else "u-2", "m": m}, ensure_ascii=bool(n % 2)) + "\n"
        for n, (mine, m) in enumerate(rows)
    ]
    keep, theirs = _Rows(RowFiles(prefix="p/", format="jsonl", field="user", identity="user_id"), "u-1").split(
        "".join(lines), "h"
    )
    assert keep == [line for line in lines if '"u-2"' in line]
    assert len(theirs) == sum(mine for mine, _ in rows)


@pytest.mark.parametrize("bucket_versioning", ["Enabled", None])
def test_erasing_the_same_find_twice_is_harmless(s3, bucket_versioning):
    if bucket_versioning:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": bucket_versioning})
    put(s3, "users/u-1/a.txt", "a")
    put(s3, "chats/c.jsonl", jsonl({"user": "u-1", "m": "mine"}, {"user": "u-2", "m": "theirs"}))
    subject = connector()
    found = subject.find(SUBJECT)
    first = subject.erase(found)
    second = subject.erase(found)
    assert (first.erased, first.already_gone) == (2, 0)
    # S3 answers a delete of a deleted version as a success: counted as a delete issued, not an error
    assert (second.erased, second.already_gone) == (1, 1)
    assert subject.verify(SUBJECT) == 0
    assert text(s3, "chats/c.jsonl") == jsonl({"user": "u-2", "m": "theirs"})
    assert versions(s3, "users/u-1/") == []


def test_a_probe_proves_each_permission_and_changes_nothing(versioned):
    put(versioned, "chats/a.jsonl", jsonl({"user": "u-1", "m": "mine"}))
    before = versions(versioned, "")
    subject = connector(row_files=[{"prefix": "chats/", "format": "jsonl", "field": "user", "identity": "user_id"}])
    assert [(c.operation, c.result) for c in subject.probe()] == [
        ("s3:ListBucketVersions", "allowed"),
        ("s3:GetObject", "allowed"),
        ("s3:ListBucketVersions", "allowed"),
        ("s3:GetObject", "allowed"),
        ("s3:PutObject", "allowed"),
    ]
    assert versions(versioned, "") == before
    deny(subject.client, "PutObject")
    assert subject.probe()[-1] == base.Check("s3:PutObject", "denied", "AccessDeniedException")
