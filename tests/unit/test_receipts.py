"""Erasure receipts against moto's KMS and DynamoDB in-process: a chain signed with an ECC_NIST_P256
key verifies offline with the PEM alone, and every kind of change to it is found and named."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from rightsdesk.connectors import receipts
from rightsdesk.connectors.receipts import Action, Counts, LegalException, Outcome, Result
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.platform import hashing
from rightsdesk.retention import holds
from rightsdesk.store.items.receipts import ReceiptEntryItem
from rightsdesk.store.items.requests import RequestItem
from rightsdesk_cli import receipt_verify
from tests.support.aws import moto_cloud

ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::111122223333:role/rightsdesk-connector-users"


@pytest.fixture(scope="module")
def cloud():
    """One moto for the module: a table, and two signing keys (the stack's and a stranger's)."""
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        found = moto_cloud(patch, prefix="rightsdesk-receipts")
        kms = found.session.client("kms")
        keys = [
            kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description=name)["KeyMetadata"]["Arn"]
            for name in ("receipts", "stranger")
        ]
        yield found, receipts.KmsSigner(keys[0], client=kms), receipts.KmsSigner(keys[1], client=kms)


@pytest.fixture
def signer(cloud):
    return cloud[1]


@pytest.fixture
def stranger(cloud):
    return cloud[2]


def pem(signer) -> bytes:
    return receipts.public_key_pem(signer.public_key_der()).encode()


def key_hash(key: str) -> str:
    return hashing.keyed_hash("receipt_key", key)


def erasure(connector: str, n: int, /, **changes: Any) -> Outcome:
    """A verified erasure of `n` records by `connector`, with `changes` to any field."""
    started = clock.now()
    fields: dict[str, Any] = dict(
        connector_id=connector,
        kind="dynamodb",
        action=Action.ERASE,
        result=Result.DONE,
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        counts=Counts(found=n, erased=n),
        key_hashes=[key_hash(f"{connector}/{i}") for i in range(n)],
        remaining=0,
        role_arn=ROLE,
    )
    fields.update(changes)
    return Outcome(**fields)


def new_request() -> str:
    return hashing.new_id("dsr")


def sealed_chain(signer, request_id: str | None = None) -> dict:
    """A request's receipt: three connectors (one keeps invoices) and a seal, exported."""
    request_id = request_id or new_request()
    receipts.record(request_id, erasure("users-table", 3), signer=signer)
    receipts.record(request_id, erasure("transcripts", 2, kind="s3"), signer=signer)
    receipts.record(
        request_id,
        erasure(
            "billing",
            2,
            counts=Counts(found=3, erased=1, kept=2),
            result=Result.KEPT_FOR_LEGAL_BASIS,
            legal_exception=LegalException(
                "invoices: § 147 AO, 10 years — Steuerrecht", clock.now() + timedelta(days=3650)
            ),
        ),
        signer=signer,
    )
    receipts.seal(request_id, signer=signer)
    return receipts.export(request_id)


@pytest.fixture(scope="module")
def chain(cloud) -> dict:
    return sealed_chain(cloud[1])


# ---------------------------------------------------------------- signing and verifying


def test_a_sealed_chain_verifies_with_the_public_key_alone(chain, signer):
    outcome = receipts.verify(chain, pem(signer))
    assert outcome.valid, outcome.problems
    assert outcome.sealed and outcome.entries == 4
    assert [entry["body"]["seq"] for entry in chain["entries"]] == [1, 2, 3, 4]
    assert chain["entries"][0]["body"]["prev"] == receipts.GENESIS
    assert chain["entries"][3]["body"]["summary"] == {
        "connectors": 3,
        "erased": 6,
        "kept": 2,
        "remaining": 0,
        "results": {"done": 2, "kept_for_legal_basis": 1},
    }
    assert outcome.head == chain["head"]["hash"]


def test_the_der_public_key_from_kms_verifies_too(chain, signer):
    assert receipts.verify(chain, signer.public_key_der()).valid


def test_every_entry_names_its_signer_and_what_erasure_cannot_reach(chain, signer):
    for entry in chain["entries"]:
        body = entry["body"]
        assert body["signer"]["key_id"].startswith("arn:aws:kms:")
        assert body["signer"] == {
            "key_id": signer.key_id,
            "algorithm": "ECDSA_SHA_256",
            "public_key_sha256": hashlib.sha256(signer.public_key_der()).hexdigest(),
        }
        assert "35 days" in body["residual_copies"]["text"] and "backups" in body["residual_copies"]["text"]
    assert chain["residual_copies"] == receipts.RESIDUAL_COPIES


def test_a_connector_entry_records_what_was_touched_how_and_the_requery(chain):
    body = chain["entries"][2]["body"]
    assert body["connector"] == {"id": "billing", "kind": "dynamodb", "role_arn": ROLE}
    assert (body["action"], body["result"], body["remaining"]) == ("erase", "kept_for_legal_basis", 0)
    assert body["counts"] == {"found": 3, "erased": 1, "kept": 2}
    assert body["legal_exception"]["basis"] == "invoices: § 147 AO, 10 years — Steuerrecht"
    listed = chain["entries"][2]["key_hashes"]
    assert body["keys"] == {"count": 2, "digest": receipts.keys_digest(listed)}
    assert listed == sorted(listed) and all(len(h) == 64 for h in listed)


def test_the_stored_body_is_the_signed_canonical_bytes(chain, signer):
    request_id = chain["request_id"]
    items = list(ReceiptEntryItem.query(RequestItem.key(request_id), ReceiptEntryItem.sk.startswith("RECEIPT#")))
    assert [item.sk for item in items] == [f"RECEIPT#{n:06d}" for n in (1, 2, 3, 4)]
    for item, exported in zip(items, chain["entries"], strict=True):
        assert item.body.encode() == receipts.canonical_json(exported["body"])
        assert item.entry_hash == hashlib.sha256(item.body.encode()).hexdigest() == exported["hash"]


def test_entries_are_kept_with_the_request_skeleton(chain):
    request_id = chain["request_id"]
    for item in ReceiptEntryItem.query(RequestItem.key(request_id), ReceiptEntryItem.sk.startswith("RECEIPT#")):
        assert item.expires_at == retention.expires_at(retention.Rule.SKELETON, item.recorded_at)
        assert timedelta(seconds=item.expires_at - item.recorded_at.timestamp()) >= timedelta(days=3 * 365 - 1)


def _stored_expiry(request_id: str) -> list[int | None]:
    query = ReceiptEntryItem.query(RequestItem.key(request_id), ReceiptEntryItem.sk.startswith("RECEIPT#"))
    return [None if item.expires_at is None else int(item.expires_at) for item in query]


def test_a_legal_hold_on_the_request_holds_its_receipt_until_released(signer):
    request_id, now = new_request(), clock.now()
    RequestItem(
        RequestItem.key(request_id),
        RequestItem.SK,
        request_id=request_id,
        controller_id="ctl_receipts",
        site="receipts.test",
        request_type="erasure",
        status="in_progress",
        created_at=now,
        verified_at=now,
        expires_at=retention.request_expires_at(now, now),
    ).save()
    receipts.record(request_id, erasure("users-table", 1), signer=signer)
    holds.place(request_id, "litigation hold, case 2026-17", actor="operator")
    assert _stored_expiry(request_id) == [None]
    receipts.record(request_id, erasure("transcripts", 1, kind="s3"), signer=signer)  # written during the hold
    assert _stored_expiry(request_id) == [None, None]
    clock.advance(86400)
    holds.release(request_id, actor="operator")
    expected = [retention.expires_at(retention.Rule.SKELETON, e.recorded_at) for e in _items(request_id)]
    assert _stored_expiry(request_id) == expected and None not in expected
    assert receipts.verify(receipts.export(request_id), pem(signer)).valid  # holding changes no signed byte


def _items(request_id: str) -> list[ReceiptEntryItem]:
    return list(ReceiptEntryItem.query(RequestItem.key(request_id), ReceiptEntryItem.sk.startswith("RECEIPT#")))


# ---------------------------------------------------------------- tampering, one kind at a time


def _entries(document: dict) -> list[dict]:
    return document["entries"]


def _set_count(doc: dict) -> None:
    _entries(doc)[0]["body"]["counts"]["erased"] = 2


def _set_remaining(doc: dict) -> None:
    _entries(doc)[1]["body"]["remaining"] = 1


def _change_key_hash(doc: dict) -> None:
    _entries(doc)[1]["key_hashes"][0] = "f" * 64


def _drop_key_hash(doc: dict) -> None:
    _entries(doc)[0]["key_hashes"].pop()


def _change_prev(doc: dict) -> None:
    _entries(doc)[2]["body"]["prev"] = "0" * 64


def _change_listed_hash(doc: dict) -> None:
    _entries(doc)[1]["hash"] = "a" * 64


def _swap_order(doc: dict) -> None:
    listed = _entries(doc)
    listed[0], listed[1] = listed[1], listed[0]


def _remove_middle(doc: dict) -> None:
    del _entries(doc)[1]


def _remove_first(doc: dict) -> None:
    del _entries(doc)[0]


def _remove_before_seal(doc: dict) -> None:
    del _entries(doc)[2]


def _insert_copy(doc: dict) -> None:
    listed = _entries(doc)
    listed.insert(2, copy.deepcopy(listed[1]))


def _insert_other_requests_entry(other: dict) -> Callable[[dict], None]:
    def mutate(doc: dict) -> None:
        _entries(doc).insert(1, copy.deepcopy(other["entries"][1]))

    return mutate


def _swap_signatures(doc: dict) -> None:
    listed = _entries(doc)
    listed[0]["signature"], listed[1]["signature"] = listed[1]["signature"], listed[0]["signature"]


def _change_result(doc: dict) -> None:
    _entries(doc)[2]["body"]["result"] = "done"


def _change_legal_basis(doc: dict) -> None:
    _entries(doc)[2]["body"]["legal_exception"]["basis"] = "none"


def _renumber(doc: dict) -> None:
    """Remove entry 2 and number the rest as if nothing was missing."""
    listed = _entries(doc)
    del listed[1]
    for position, entry in enumerate(listed, start=1):
        entry["body"]["seq"] = position


def _another_request(doc: dict) -> None:
    doc["request_id"] = "dsr_someone_else"


def tampering(other_chain: dict) -> dict[str, tuple[Callable[[dict], None], int, set[str]]]:
    """What was done -> (mutation, first position found wrong, codes that name it there)."""
    return {
        "a count": (_set_count, 1, {"signature"}),
        "the re-query's remaining": (_set_remaining, 2, {"signature"}),
        "a touched key's hash": (_change_key_hash, 2, {"keys"}),
        "a touched key's hash removed": (_drop_key_hash, 1, {"keys"}),
        "a link": (_change_prev, 3, {"link", "signature"}),
        "an entry's listed hash": (_change_listed_hash, 2, {"hash"}),
        "the order": (_swap_order, 1, {"order", "link"}),
        "a removed entry": (_remove_middle, 2, {"order", "link"}),
        "the first entry removed": (_remove_first, 1, {"order", "link"}),
        "the entry before the seal removed": (_remove_before_seal, 3, {"order", "link"}),
        "an inserted copy": (_insert_copy, 3, {"order", "link"}),
        "an entry of another request inserted": (
            _insert_other_requests_entry(other_chain),
            2,
            {"request", "order", "link"},
        ),
        "swapped signatures": (_swap_signatures, 1, {"signature"}),
        "a result": (_change_result, 3, {"signature"}),
        "a legal basis": (_change_legal_basis, 3, {"signature"}),
        "renumbered after a removal": (_renumber, 2, {"signature", "link"}),
        "the request named": (_another_request, 1, {"request"}),
    }


@pytest.fixture(scope="module")
def other_chain(cloud) -> dict:
    return sealed_chain(cloud[1])


TAMPERING_KINDS = list(tampering({"entries": []}))


@pytest.mark.parametrize("kind", TAMPERING_KINDS)
def test_tampering_is_found_and_the_entry_named(chain, other_chain, signer, kind):
    mutate, position, codes = tampering(other_chain)[kind]
    assert receipts.verify(chain, pem(signer)).valid  # the control: untouched, it verifies
    broken = copy.deepcopy(chain)
    mutate(broken)
    outcome = receipts.verify(broken, pem(signer))
    assert not outcome.valid
    first = outcome.problems[0]
    assert first.position == position, outcome.problems
    assert {p.code for p in outcome.problems if p.position == position} & codes, outcome.problems


def _signed(signer, request_id: str, seq: int, prev: str, part: dict, key_hashes: list[str] | None = None) -> dict:
    body, digest, signature = receipts.sign_entry(request_id, seq, prev, part, signer, clock.now())
    entry = {"body": body, "hash": digest, "signature": signature}
    if part["entry"] == "connector":
        entry["key_hashes"] = key_hashes or []
    return entry


def _first(signer, request_id: str) -> tuple[dict, list[str]]:
    outcome = erasure("users-table", 2)
    entry = _signed(
        signer, request_id, 1, receipts.GENESIS, receipts.connector_body(outcome), sorted(outcome.key_hashes)
    )
    return entry, sorted(outcome.key_hashes)


def _document(request_id: str, entries: list[dict]) -> dict:
    return {"format": receipts.FORMAT, "request_id": request_id, "entries": entries}


def _seal_part(entries: list[dict], **changes) -> dict:
    part = {"entry": "seal", "covers": len(entries), "summary": receipts.summary([e["body"] for e in entries])}
    part.update(changes)
    return part


def _seal_covering_too_few(signer, rid: str) -> list[dict]:
    first, _ = _first(signer, rid)
    return [first, _signed(signer, rid, 2, first["hash"], _seal_part([first], covers=0))]


def _seal_with_wrong_totals(signer, rid: str) -> list[dict]:
    first, _ = _first(signer, rid)
    totals = {**receipts.summary([first["body"]]), "erased": 99}
    return [first, _signed(signer, rid, 2, first["hash"], _seal_part([first], summary=totals))]


def _number_skipped(signer, rid: str) -> list[dict]:
    first, _ = _first(signer, rid)
    return [first, _signed(signer, rid, 3, first["hash"], _seal_part([first]))]


def _signed_for_another_request(signer, rid: str) -> list[dict]:
    first, _ = _first(signer, rid)
    return [first, _signed(signer, "dsr_other", 2, first["hash"], _seal_part([first]))]


# What a writer holding the key could still get wrong (a bug, a misuse of sign_entry) -> where, which code.
SIGNED_BUT_WRONG: dict[str, tuple[Callable[[Any, str], list[dict]], int, str]] = {
    "a seal that covers too few": (_seal_covering_too_few, 2, "seal"),
    "a seal whose totals are wrong": (_seal_with_wrong_totals, 2, "seal"),
    "a number skipped": (_number_skipped, 2, "order"),
    "an entry signed for another request": (_signed_for_another_request, 2, "request"),
}


@pytest.mark.parametrize("case", SIGNED_BUT_WRONG)
def test_an_entry_signed_with_the_right_key_must_still_fit_the_chain(signer, case):
    build, position, code = SIGNED_BUT_WRONG[case]
    request_id = new_request()
    entries = build(signer, request_id)
    outcome = receipts.verify(_document(request_id, entries), pem(signer))
    assert [(p.position, p.code) for p in outcome.problems] == [(position, code)]


def test_a_chain_signed_with_another_key_fails_on_every_entry(signer, stranger):
    forged = sealed_chain(stranger)  # consistent in itself: numbers, links and digests all right
    assert receipts.verify(forged, pem(stranger)).valid
    outcome = receipts.verify(forged, pem(signer))
    assert not outcome.valid
    assert {(p.position, p.code) for p in outcome.problems} == {
        (position, code) for position in (1, 2, 3, 4) for code in ("key", "signature")
    }


def test_an_entry_re_signed_by_another_key_is_found(chain, signer, stranger):
    """An insider with another key rewrites one entry, its hash and the next link consistently."""
    broken = copy.deepcopy(chain)
    body = broken["entries"][1]["body"]
    body["counts"]["erased"] = 0
    message = receipts.canonical_json(body)
    broken["entries"][1]["signature"] = receipts.base64.b64encode(stranger.sign(message)).decode()
    outcome = receipts.verify(broken, pem(signer))
    assert [(p.position, p.code) for p in outcome.problems][:1] == [(2, "signature")]


def test_a_chain_that_spans_a_replaced_key_verifies_with_both_public_keys(signer, stranger):
    request_id = new_request()
    receipts.record(request_id, erasure("users-table", 1), signer=signer)
    receipts.record(request_id, erasure("transcripts", 1, kind="s3"), signer=stranger)  # after the key was replaced
    receipts.seal(request_id, signer=stranger)
    exported = receipts.export(request_id)
    both = receipts.verify(exported, [pem(signer), pem(stranger)])
    assert both.valid and both.sealed
    old_only = receipts.verify(exported, [pem(signer)])
    assert {(p.position, p.code) for p in old_only.problems} == {
        (2, "key"),
        (2, "signature"),
        (3, "key"),
        (3, "signature"),
    }


def test_a_chain_cut_after_its_last_connector_verifies_but_is_not_sealed(chain, signer):
    cut = copy.deepcopy(chain)
    del cut["entries"][-1]
    outcome = receipts.verify(cut, pem(signer))
    assert outcome.valid and not outcome.sealed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_any_value_of_a_signed_body_is_found(chain, signer, data):
    broken = copy.deepcopy(chain)
    position = data.draw(st.integers(min_value=0, max_value=len(broken["entries"]) - 1))
    node: Any = broken["entries"][position]["body"]
    while True:
        key = data.draw(st.sampled_from(sorted(node)))
        if isinstance(node[key], dict) and node[key]:
            node = node[key]
            continue
        break
    replacement = data.draw(st.one_of(st.integers(), st.text(max_size=8), st.none(), st.booleans()))
    if node[key] == replacement and type(node[key]) is type(replacement):
        return
    node[key] = replacement
    outcome = receipts.verify(broken, pem(signer))
    assert not outcome.valid
    assert outcome.problems[0].position == position + 1


# ---------------------------------------------------------------- the chain as stored


def test_appending_after_a_seal_leaves_the_chain_open_until_sealed_again(signer):
    request_id = new_request()
    receipts.record(request_id, erasure("users-table", 1), signer=signer)
    first_seal = receipts.seal(request_id, signer=signer)
    assert receipts.seal(request_id, signer=signer) == first_seal  # sealing twice adds nothing
    receipts.record(request_id, erasure("billing", 0, counts=Counts(), result=Result.NOTHING_FOUND), signer=signer)
    assert not receipts.verify(receipts.export(request_id), pem(signer)).sealed
    receipts.seal(request_id, signer=signer)
    outcome = receipts.verify(receipts.export(request_id), pem(signer))
    assert outcome.valid and outcome.sealed and outcome.entries == 4


def test_a_retried_step_finds_its_entry_instead_of_adding_one(signer):
    request_id = new_request()
    first = receipts.record(request_id, erasure("users-table", 2), signer=signer, step_id="users-table#run1")
    again = receipts.record(request_id, erasure("users-table", 2), signer=signer, step_id="users-table#run1")
    assert again == first and len(receipts.entries(request_id)) == 1


def test_two_writers_racing_for_the_next_number_both_land_in_order(signer, monkeypatch):
    """The loser of the conditional put reads the new end and appends after it."""
    request_id = new_request()
    receipts.record(request_id, erasure("users-table", 1), signer=signer)
    real_entries = receipts.entries
    raced = []

    def stale_then_real(rid: str):
        chain = real_entries(rid)
        if not raced:
            raced.append(True)
            receipts.record(rid, erasure("transcripts", 1, kind="s3"), signer=signer)  # the other writer wins
        return chain

    monkeypatch.setattr(receipts, "entries", stale_then_real)
    receipts.record(request_id, erasure("billing", 1), signer=signer)
    monkeypatch.undo()
    exported = receipts.export(request_id)
    assert [e["body"]["connector"]["id"] for e in exported["entries"]] == ["users-table", "transcripts", "billing"]
    assert receipts.verify(exported, pem(signer)).valid


# ---------------------------------------------------------------- the 4 KB limit and bad outcomes


class _Counting:
    """A signer that counts the KMS calls made through it."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    @property
    def key_id(self) -> str:
        return self.inner.key_id

    def public_key_der(self) -> bytes:
        return self.inner.public_key_der()

    def sign(self, message: bytes) -> bytes:
        self.calls += 1
        return self.inner.sign(message)


def with_basis(length: int) -> Outcome:
    """An erasure that keeps a record under a legal basis `length` characters long."""
    return erasure(
        "billing",
        1,
        counts=Counts(found=2, erased=1, kept=1),
        result=Result.KEPT_FOR_LEGAL_BASIS,
        legal_exception=LegalException("x" * length),
    )


def body_size(request_id: str, outcome: Outcome, signer) -> int:
    part = receipts.connector_body(outcome)
    body = {**part, "format": receipts.FORMAT, "request_id": request_id, "seq": 1, "prev": receipts.GENESIS}
    body.update(recorded_at=clock.isoformat(clock.now()), residual_copies=receipts.RESIDUAL_COPIES)
    body["signer"] = {
        "key_id": signer.key_id,
        "algorithm": receipts.SIGNING_ALGORITHM,
        "public_key_sha256": receipts.key_fingerprint(signer.public_key_der()),
    }
    return len(receipts.canonical_json(body))


def test_an_entry_over_4_kb_is_refused_before_kms_and_nothing_is_stored(signer):
    request_id = new_request()
    longest = receipts.MAX_SIGNED_BYTES - (body_size(request_id, with_basis(1), signer) - 1)
    assert body_size(request_id, with_basis(longest), signer) == receipts.MAX_SIGNED_BYTES
    counting = _Counting(signer)
    with pytest.raises(receipts.ReceiptTooLarge) as refused:
        receipts.record(request_id, with_basis(longest + 1), signer=counting)
    assert refused.value.status == 422 and "4097 bytes" in refused.value.message and "4096" in refused.value.message
    assert counting.calls == 0 and receipts.entries(request_id) == []
    receipts.record(request_id, with_basis(longest), signer=counting)  # exactly 4096 bytes: signed
    assert counting.calls == 1
    assert receipts.verify(receipts.export(request_id), pem(signer)).valid


def test_kms_signer_refuses_a_message_over_4_kb(signer):
    with pytest.raises(receipts.ReceiptTooLarge):
        signer.sign(b"x" * (receipts.MAX_SIGNED_BYTES + 1))
    assert len(signer.sign(b"x" * receipts.MAX_SIGNED_BYTES)) > 0


def test_a_verifier_refuses_a_body_over_4_kb(chain, signer):
    broken = copy.deepcopy(chain)
    broken["entries"][0]["body"]["padding"] = "x" * receipts.MAX_SIGNED_BYTES
    codes = {p.code for p in receipts.verify(broken, pem(signer)).problems if p.position == 1}
    assert {"size", "signature"} <= codes


BAD_OUTCOMES: dict[str, tuple[dict[str, Any], str]] = {
    "a raw email as a key": ({"key_hashes": ["someone@example.com"]}, "key_hashes"),
    "an uppercase hash": ({"key_hashes": ["A" * 64]}, "key_hashes"),
    "a negative count": ({"counts": Counts(found=-1)}, "counts.found"),
    "a bool as a count": ({"counts": Counts(found=True)}, "counts.found"),
    "done without the re-query": ({"remaining": None}, "remaining"),
    "done with records left": ({"remaining": 3}, "remaining"),
    "kept without a basis": ({"counts": Counts(found=2, erased=1, kept=1), "remaining": 0}, "legal_exception"),
    "a basis with nothing kept": ({"legal_exception": LegalException("tax")}, "legal_exception"),
    "kept_for_legal_basis keeping nothing": (
        {"result": Result.KEPT_FOR_LEGAL_BASIS, "legal_exception": LegalException("tax")},
        "counts.kept",
    ),
    "finished before it started": ({"finished_at": clock.now() - timedelta(days=1)}, "finished_at"),
    "a user ARN for a role": ({"role_arn": "arn:aws:iam::111122223333:user/alice"}, "role_arn"),
    "an unknown action": ({"action": "shred"}, "action"),
    "an unknown result": ({"result": "maybe"}, "result"),
    "a connector id with spaces": ({"connector_id": "users table"}, "connector_id"),
    "too many keys": ({"key_hashes": [f"{i:064x}" for i in range(receipts.MAX_KEY_HASHES + 1)]}, "key_hashes"),
}


@pytest.mark.parametrize("case", BAD_OUTCOMES)
def test_an_outcome_a_receipt_cannot_vouch_for_is_refused_and_nothing_stored(signer, case):
    changes, field_name = BAD_OUTCOMES[case]
    request_id = new_request()
    counting = _Counting(signer)
    with pytest.raises(InvalidInput) as refused:
        receipts.record(request_id, erasure("users-table", 1, **changes), signer=counting)
    assert field_name in refused.value.fields
    assert counting.calls == 0 and receipts.entries(request_id) == []


@pytest.mark.parametrize(
    "action, result, remaining",
    [
        (Action.FIND, Result.DONE, None),
        (Action.EXPORT, Result.DONE, None),
        (Action.ERASE, Result.FAILED, None),
        (Action.ERASE, Result.FAILED, 4),
        (Action.ERASE, Result.PARKED_AMBIGUOUS, None),
        (Action.ERASE, Result.NOTHING_FOUND, 0),
        (Action.VERIFY, Result.DONE, 0),
    ],
)
def test_outcomes_without_a_verified_erasure_are_recorded_as_they_are(signer, action, result, remaining):
    request_id = new_request()
    entry = receipts.record(
        request_id, erasure("users-table", 1, action=action, result=result, remaining=remaining), signer=signer
    )
    assert (entry.body["action"], entry.body["result"], entry.body["remaining"]) == (
        action.value,
        result.value,
        remaining,
    )


def test_a_key_that_cannot_sign_receipts_is_refused(cloud):
    kms = cloud[0].session.client("kms")
    symmetric = kms.create_key(Description="not for receipts")["KeyMetadata"]["Arn"]
    with pytest.raises(ValueError, match="ECC_NIST_P256"):
        _ = receipts.KmsSigner(symmetric, client=kms).key_id


# ---------------------------------------------------------------- the canonical form


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"b": 1, "a": [True, None, "é"]}, '{"a":[true,null,"é"],"b":1}'.encode()),
        ({"z": {"y": 0, "x": "\n"}}, b'{"z":{"x":"\\n","y":0}}'),
    ],
)
def test_the_canonical_form_sorts_keys_drops_whitespace_and_writes_utf8(value, expected):
    assert receipts.canonical_json(value) == expected


@pytest.mark.parametrize("value", [{"a": 1.5}, {1: "a"}, {"a": "\ud800"}, {"a": (1, 2)}, {"a": 2**53}, [-(2**53)]])
def test_values_without_one_spelling_have_no_canonical_form(value):
    with pytest.raises(ValueError):
        receipts.canonical_json(value)


# ---------------------------------------------------------------- the command an auditor runs


@pytest.fixture
def files(tmp_path, chain, signer) -> Callable[[dict], tuple[str, str]]:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem(signer))

    def write(document: dict) -> tuple[str, str]:
        receipt_file = tmp_path / "receipt.json"
        receipt_file.write_text(json.dumps(document))
        return str(receipt_file), str(key_file)

    return write


def test_the_command_exits_0_for_a_sealed_chain(files, chain, capsys):
    receipt_file, key_file = files(chain)
    assert receipt_verify.main([receipt_file, "--public-key", key_file]) == 0
    assert "4 entries verified, sealed" in capsys.readouterr().out


def test_the_command_exits_1_and_names_the_entry(files, chain, capsys):
    broken = copy.deepcopy(chain)
    _set_count(broken)
    receipt_file, key_file = files(broken)
    assert receipt_verify.main([receipt_file, "--public-key", key_file]) == 1
    out = capsys.readouterr().out
    assert "FAILED entry 1 (seq 1): signature" in out and "NOT verified" in out


def test_the_command_exits_3_for_an_unsealed_chain(files, chain, capsys):
    cut = copy.deepcopy(chain)
    del cut["entries"][-1]
    receipt_file, key_file = files(cut)
    assert receipt_verify.main([receipt_file, "--public-key", key_file, "--json"]) == 3
    answer = json.loads(capsys.readouterr().out)
    assert answer["valid"] is True and answer["sealed"] is False and answer["entries"] == 3


@pytest.mark.parametrize(
    "receipt_text, key_text",
    [
        ("{not json", None),
        ('{"format": "rightsdesk.receipt.v1", "format": "x", "entries": []}', None),
        (None, "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n"),
        (None, "a DER key it is not"),
    ],
)
def test_the_command_exits_2_when_it_cannot_read_its_input(files, chain, tmp_path, receipt_text, key_text, capsys):
    receipt_file, key_file = files(chain)
    if receipt_text is not None:
        Path(receipt_file).write_text(receipt_text)
    if key_text is not None:
        Path(key_file).write_text(key_text)
    assert receipt_verify.main([receipt_file, "--public-key", key_file]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_an_rsa_key_is_not_a_receipt_key(files, chain, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    receipt_file, key_file = files(chain)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    Path(key_file).write_bytes(rsa_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    assert receipt_verify.main([receipt_file, "--public-key", key_file]) == 2


def test_the_command_runs_offline_without_aws_or_rightsdesk_settings(files, chain, other_chain, tmp_path):
    """As an auditor runs it: a new process, no credentials, no region, no table, no hash key."""
    receipt_file, key_file = files(chain)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{ROOT / 'cli'}:{ROOT / 'layers' / 'core'}",
        "HOME": str(tmp_path),
    }
    command = [sys.executable, "-m", "rightsdesk_cli.receipt_verify", receipt_file, "--public-key", key_file]
    run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    forged = copy.deepcopy(chain)
    _insert_other_requests_entry(other_chain)(forged)
    Path(receipt_file).write_text(json.dumps(forged))
    run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 1 and "FAILED entry 2 (seq 2): request" in run.stdout
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, rightsdesk_cli.receipt_verify; print(*sorted(set(sys.modules) & SDKS))".replace(
                "SDKS", str({"pynamodb", "boto3", "botocore"})
            ),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert imported.stdout.strip() == "", "the verifier loads no AWS SDK"


@pytest.mark.skipif(not (shutil.which("jq") and shutil.which("openssl")), reason="needs jq and openssl")
def test_an_auditor_without_rightsdesk_checks_an_entry_with_jq_and_openssl(files, chain, tmp_path):
    """docs/connectors.md's third way, as written: jq's sorted compact output is the canonical body."""
    receipt_file, key_file = files(chain)

    def shell(script: str) -> str:
        run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout

    for position in range(len(chain["entries"])):
        verified = shell(
            f"jq -jcS '.entries[{position}].body' {receipt_file} > body.json && "
            f"jq -r '.entries[{position}].signature' {receipt_file} | base64 -d > sig.der && "
            f"openssl dgst -sha256 -verify {key_file} -signature sig.der body.json"
        )
        assert verified.strip() == "Verified OK"
        assert shell("sha256sum body.json").split()[0] == chain["entries"][position]["hash"]
