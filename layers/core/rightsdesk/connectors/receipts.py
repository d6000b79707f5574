"""Verified erasure receipts: what each connector did for a request, signed and hash-chained, so an
auditor checks the whole record offline with the public key alone (docs/connectors.md, Receipts).

A request's receipt is a chain of entries, one per connector outcome (`record`) and a `seal` that
closes it (the chain so far, with totals). Each entry's body is canonical JSON (`canonical_json`:
the one definition) holding the hash of the entry before it, and is signed with a KMS asymmetric
key: ECC_NIST_P256, ECDSA_SHA_256 over the RAW body. KMS takes RAW messages of at most 4 KB (moto
implements RAW, not DIGEST), so a body carries the count and a digest of the touched keys' hashes,
never the list, and a larger body is refused (`ReceiptTooLarge`) before KMS is called. Identities
appear only as keyed hashes (rightsdesk.platform.hashing), made by the connectors.

`verify` needs no AWS and no rightsdesk configuration: it is what `python -m
rightsdesk_cli.receipt_verify` runs, and it checks every signature, link, number and digest.

Imports: kernel and platform at module level; the store's item and `cryptography` only where used,
so the offline verifier loads neither pynamodb nor a table's settings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from rightsdesk.store.items.receipts import ReceiptEntryItem

FORMAT = "rightsdesk.receipt.v1"
SIGNING_ALGORITHM = "ECDSA_SHA_256"
KEY_SPEC = "ECC_NIST_P256"
# KMS Sign with MessageType RAW takes at most 4096 bytes.
MAX_SIGNED_BYTES = 4096
# The list of touched keys' hashes is kept beside the entry (a table item holds at most 400 KB);
# a connector's ceiling on records per request must not exceed this (docs/connectors.md).
MAX_KEY_HASHES = 5000
# What the first entry links to.
GENESIS = "0" * 64
# Appends that lost a race for the next number are made again from the new end of the chain.
_APPEND_ATTEMPTS = 5

RESIDUAL_COPIES = {
    "code": "pitr_and_backups",
    "text": (
        "Erasure removes the records from the live stores named here; copies outside them are not "
        "reached at once. DynamoDB point-in-time recovery keeps earlier states of a table for up to "
        "35 days, and backups (AWS Backup, table exports, snapshots) keep theirs by their own "
        "retention rules. A restore from either can bring erased records back, so a restore must be "
        "followed by the erasure again."
    ),
}

# The largest integer every JSON reader (IEEE doubles, RFC 8785) spells and reads back exactly.
_MAX_EXACT_INTEGER = 2**53 - 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


class Action(str, Enum):
    FIND = "find"
    EXPORT = "export"
    ERASE = "erase"
    VERIFY = "verify"
    RECTIFY = "rectify"  # corrected values written and read back; the body holds counts, never values


class Result(str, Enum):
    DONE = "done"
    NOTHING_FOUND = "nothing_found"
    FAILED = "failed"
    KEPT_FOR_LEGAL_BASIS = "kept_for_legal_basis"
    PARKED_AMBIGUOUS = "parked_ambiguous"
    PARKED_TOO_MANY = "parked_too_many"


class ReceiptTooLarge(InvalidInput):
    """The signed body would exceed KMS's 4 KB RAW message, or the key list an item's room."""

    code = "receipt_too_large"


# ---------------------------------------------------------------- what a connector reports


@dataclass(frozen=True)
class Counts:
    found: int = 0
    erased: int = 0
    kept: int = 0
    rectified: int = 0  # in a body only for the action rectify: earlier bodies read as before


@dataclass(frozen=True)
class LegalException:
    """Records a connector keeps under Art. 17(3) (invoices, say): the basis as declared in the
    connector's definition, and until when they are kept (None: the basis names no date); with a
    declared keep rule also its period in days and how many records it keeps."""

    basis: str
    keep_until: datetime | None = None
    period_days: int | None = None
    kept: int | None = None

    def as_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "basis": self.basis,
            "keep_until": None if self.keep_until is None else _timestamp(self.keep_until),
        }
        # Added to the v1 body only when known, so an entry without them reads as before.
        if self.period_days is not None:
            body["period_days"] = self.period_days
        if self.kept is not None:
            body["kept"] = self.kept
        return body


@dataclass(frozen=True)
class Outcome:
    """One connector's outcome for one request, as a receipt records it.

    `key_hashes` are keyed hashes (64 hex digits) of the keys touched, never the keys. `remaining`
    is what the re-query after an erasure still found, the records kept under `legal_exception`
    not counted: 0 is a verified erasure; None where nothing was re-queried (find, export, or a
    failure before the re-query). An erasure recorded as `done` or `kept_for_legal_basis` must
    have re-queried and found nothing left.
    """

    connector_id: str
    kind: str
    action: Action
    result: Result
    started_at: datetime
    finished_at: datetime
    counts: Counts = field(default_factory=Counts)
    key_hashes: Sequence[str] = ()
    remaining: int | None = None
    role_arn: str | None = None
    legal_exception: LegalException | None = None
    # Every exception when the connector's keep rules kept records under more than one basis;
    # `legal_exception` alone stays for a single one (the v1 body's field).
    legal_exceptions: Sequence[LegalException] = ()

    @property
    def exceptions(self) -> list[LegalException]:
        listed = list(self.legal_exceptions)
        if self.legal_exception is not None and self.legal_exception not in listed:
            listed.insert(0, self.legal_exception)
        return listed


def from_connector_outcome(outcome: Any) -> Outcome:
    """A receipt's Outcome from a connector run's (rightsdesk.connectors.base.Outcome): its counts,
    touched key hashes, re-query and legal exceptions (basis, period, end date, count)."""
    exceptions = tuple(
        LegalException(
            basis=str(entry["basis"]),
            keep_until=clock.parse_iso(entry["keep_until"]) if entry.get("keep_until") else None,
            period_days=entry.get("period_days"),
            kept=entry.get("kept"),
        )
        for entry in outcome.legal_exceptions
    )
    return Outcome(
        connector_id=outcome.connector_id,
        kind=outcome.kind,
        action=Action(outcome.action),
        result=Result(outcome.result),
        started_at=clock.parse_iso(outcome.started_at),
        finished_at=clock.parse_iso(outcome.finished_at or outcome.started_at),
        counts=Counts(
            found=outcome.found, erased=outcome.erased, kept=outcome.kept, rectified=getattr(outcome, "rectified", 0)
        ),
        key_hashes=tuple(outcome.touched),
        remaining=outcome.remaining,
        role_arn=outcome.role_arn,
        legal_exception=exceptions[0] if exceptions else None,
        legal_exceptions=exceptions,
    )


# ---------------------------------------------------------------- the canonical form


def canonical_json(value: Any) -> bytes:
    """The bytes that are hashed and signed: JSON with keys sorted, no whitespace, UTF-8, and only
    objects with string keys, arrays, strings, integers, booleans and null (no floats, whose
    spelling differs between languages). For such values this is RFC 8785 (JCS) output, so an
    auditor can reproduce it without rightsdesk."""
    _check_canonical(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        raise ValueError("text that is not valid Unicode has no canonical form") from None


def _check_canonical(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _MAX_EXACT_INTEGER:
        raise ValueError("integers beyond 2**53 are spelt differently by JSON libraries")
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, list):
        for item in value:
            _check_canonical(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            _check_canonical(item)
        return
    raise ValueError(f"a {type(value).__name__} has no canonical form here")


def entry_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical body: what the next entry's `prev` holds."""
    return hashlib.sha256(canonical_json(dict(body))).hexdigest()


def keys_digest(key_hashes: Sequence[str]) -> str:
    """SHA-256 (hex) of the canonical JSON array of the touched keys' hashes, sorted: the body's
    commitment to the list kept beside it."""
    return hashlib.sha256(canonical_json(sorted(key_hashes))).hexdigest()


def _timestamp(moment: datetime) -> str:
    return clock.isoformat(moment)


# ---------------------------------------------------------------- signing


class Signer(Protocol):
    """Signs a receipt body. `key_id` is what the body names as its signer (the key's ARN)."""

    @property
    def key_id(self) -> str: ...

    def public_key_der(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class KmsSigner:
    """An ECC_NIST_P256 SIGN_VERIFY key in KMS: ECDSA_SHA_256 over RAW messages of at most 4 KB.

    The public key is read once (GetPublicKey), to name the key by its ARN and fingerprint in each
    body; an alias or a key of another kind is refused there, before anything is signed."""

    def __init__(self, key_id: str, client: Any | None = None):
        self._requested = key_id
        self._client = client
        self._public: tuple[str, bytes] | None = None

    def _kms(self) -> Any:
        if self._client is None:
            from rightsdesk.platform import aws_clients

            self._client = aws_clients.client("kms")
        return self._client

    def _describe(self) -> tuple[str, bytes]:
        if self._public is None:
            answer = self._kms().get_public_key(KeyId=self._requested)
            spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
            if spec != KEY_SPEC or answer.get("KeyUsage") != "SIGN_VERIFY":
                raise ValueError(f"receipts need an {KEY_SPEC} SIGN_VERIFY key, not {spec} {answer.get('KeyUsage')}")
            if SIGNING_ALGORITHM not in answer.get("SigningAlgorithms", [SIGNING_ALGORITHM]):
                raise ValueError(f"the key does not offer {SIGNING_ALGORITHM}")
            key_id = answer["KeyId"]
            if not key_id.startswith("arn:"):  # KMS answers with the ARN; moto with the bare id
                key_id = self._kms().describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
            self._public = (key_id, bytes(answer["PublicKey"]))
        return self._public

    @property
    def key_id(self) -> str:
        return self._describe()[0]

    def public_key_der(self) -> bytes:
        return self._describe()[1]

    def sign(self, message: bytes) -> bytes:
        _check_size(message)
        answer = self._kms().sign(
            KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
        )
        return bytes(answer["Signature"])


def public_key_pem(der: bytes) -> str:
    """The SubjectPublicKeyInfo from KMS GetPublicKey (DER) as PEM: what an auditor is given."""
    lines = textwrap.wrap(base64.b64encode(der).decode("ascii"), 64)
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def key_fingerprint(der: bytes) -> str:
    """SHA-256 (hex) of the DER SubjectPublicKeyInfo: how a body names the key that signed it."""
    return hashlib.sha256(der).hexdigest()


def _check_size(message: bytes) -> None:
    if len(message) > MAX_SIGNED_BYTES:
        raise ReceiptTooLarge(
            f"a receipt entry is {len(message)} bytes; KMS signs RAW messages of at most {MAX_SIGNED_BYTES}",
            fields={"entry": "shorten the connector's id, kind, role name or legal basis"},
        )


# ---------------------------------------------------------------- entries


@dataclass(frozen=True)
class Entry:
    """One signed entry as stored and exported: the body, its hash, the signature (base64 DER) and,
    for a connector entry, the touched keys' hashes its body commits to."""

    body: dict[str, Any]
    hash: str
    signature: str
    key_hashes: tuple[str, ...] = ()
    step_id: str | None = None

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def is_seal(self) -> bool:
        return self.body.get("entry") == "seal"

    def as_export(self) -> dict[str, Any]:
        exported: dict[str, Any] = {"body": self.body, "hash": self.hash, "signature": self.signature}
        if self.body.get("entry") == "connector":
            exported["key_hashes"] = list(self.key_hashes)
        return exported


def connector_body(outcome: Outcome) -> dict[str, Any]:
    """The connector-specific part of an entry's body, checked: what `record` signs, less the
    chain's fields (format, request, number, link, signer, time, residual copies)."""
    problems = _outcome_problems(outcome)
    if problems:
        raise InvalidInput("the outcome cannot be recorded as a receipt", fields=problems)
    hashes = sorted(set(outcome.key_hashes))
    exceptions = outcome.exceptions
    body = {
        "entry": "connector",
        "connector": {"id": outcome.connector_id, "kind": outcome.kind, "role_arn": outcome.role_arn},
        "action": Action(outcome.action).value,
        "result": Result(outcome.result).value,
        "started_at": _timestamp(outcome.started_at),
        "finished_at": _timestamp(outcome.finished_at),
        "counts": {"found": outcome.counts.found, "erased": outcome.counts.erased, "kept": outcome.counts.kept},
        "keys": {"count": len(hashes), "digest": keys_digest(hashes)},
        "remaining": outcome.remaining,
        # v1's field: the (first) exception. Several bases: all of them in `legal_exceptions`,
        # a field added only then, so entries with one basis or none are as before.
        "legal_exception": exceptions[0].as_body() if exceptions else None,
    }
    if len(exceptions) > 1:
        body["legal_exceptions"] = [exception.as_body() for exception in exceptions]
    if outcome.action == Action.RECTIFY:
        body["counts"]["rectified"] = outcome.counts.rectified
    return body


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _outcome_problems(outcome: Outcome) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not isinstance(outcome.connector_id, str) or not _NAME.fullmatch(outcome.connector_id):
        problems["connector_id"] = "letters, digits and . _ : - only, at most 128"
    if not isinstance(outcome.kind, str) or not _NAME.fullmatch(outcome.kind):
        problems["kind"] = "letters, digits and . _ : - only, at most 128"
    if outcome.role_arn is not None and not _ROLE_ARN.fullmatch(outcome.role_arn):
        problems["role_arn"] = "an IAM role ARN"
    try:
        Action(outcome.action)
    except ValueError:
        problems["action"] = "one of " + ", ".join(a.value for a in Action)
    try:
        result = Result(outcome.result)
    except ValueError:
        problems["result"] = "one of " + ", ".join(r.value for r in Result)
        result = None
    for name in ("found", "erased", "kept", "rectified"):
        if not _count(getattr(outcome.counts, name)):
            problems[f"counts.{name}"] = "a whole number, 0 or more"
    if outcome.remaining is not None and not _count(outcome.remaining):
        problems["remaining"] = "a whole number, 0 or more, or none"
    if outcome.finished_at < outcome.started_at:
        problems["finished_at"] = "not before started_at"
    if isinstance(outcome.key_hashes, str) or not all(
        isinstance(h, str) and _HEX64.fullmatch(h) for h in outcome.key_hashes
    ):
        problems["key_hashes"] = "keyed hashes (64 lowercase hex digits), never the keys"
    elif len(set(outcome.key_hashes)) > MAX_KEY_HASHES:
        problems["key_hashes"] = f"at most {MAX_KEY_HASHES} per entry"
    kept = outcome.counts.kept if _count(outcome.counts.kept) else 0
    if (kept > 0 or result is Result.KEPT_FOR_LEGAL_BASIS) != bool(outcome.exceptions):
        problems["legal_exception"] = "records kept need their legal basis, and a basis needs kept records"
    elif result is Result.KEPT_FOR_LEGAL_BASIS and kept == 0:
        problems["counts.kept"] = "kept_for_legal_basis keeps records"
    if (
        outcome.action == Action.ERASE
        and result in (Result.DONE, Result.KEPT_FOR_LEGAL_BASIS)
        and outcome.remaining != 0
    ):
        problems["remaining"] = "an erasure is done only when the re-query found nothing left (0)"
    if outcome.action == Action.RECTIFY and result is Result.DONE and outcome.remaining != 0:
        problems["remaining"] = "a rectification is done only when every record read again holds the new values (0)"
    # No upper bound of its own: the body's 4 KB bounds it, with an error that says so.
    if any(not (isinstance(e.basis, str) and e.basis.strip()) for e in outcome.exceptions):
        problems["legal_exception.basis"] = "the basis as the connector declares it"
    return problems


def seal_body(entries: Sequence[Entry]) -> dict[str, Any]:
    """The seal's part of a body: how many entries it closes, and totals over them (per connector,
    its latest entry counts; erased records add up over all entries, a resumed run included)."""
    bodies = [entry.body for entry in entries]
    return {"entry": "seal", "covers": len(bodies), "summary": summary(bodies)}


def summary(bodies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals of a chain's connector entries, as a seal states them and a completion mail tells them."""
    latest: dict[str, Mapping[str, Any]] = {}
    erased = 0
    for body in bodies:
        if body.get("entry") != "connector":
            continue
        latest[body["connector"]["id"]] = body
        erased += body["counts"]["erased"]
    results: dict[str, int] = {}
    for body in latest.values():
        results[body["result"]] = results.get(body["result"], 0) + 1
    totals = {
        "connectors": len(latest),
        "erased": erased,
        "kept": sum(body["counts"]["kept"] for body in latest.values()),
        "remaining": sum(body["remaining"] or 0 for body in latest.values()),
        "results": dict(sorted(results.items())),
    }
    rectifying = [body for body in latest.values() if body.get("action") == Action.RECTIFY.value]
    if rectifying:  # only then: the seals of chains without a rectification read as before
        totals["rectified"] = sum(body["counts"].get("rectified", 0) for body in rectifying)
    return totals


def sign_entry(
    request_id: str, seq: int, prev: str, part: Mapping[str, Any], signer: Signer, at: datetime
) -> tuple[dict[str, Any], str, str]:
    """The full body of entry `seq` of the request's chain, its hash and its signature (base64):
    the chain's fields around `part` (a connector's or a seal's)."""
    if not _REQUEST_ID.fullmatch(request_id):
        raise InvalidInput("not a request id", fields={"request_id": "letters, digits, _ and -"})
    body = {
        **part,
        "format": FORMAT,
        "request_id": request_id,
        "seq": seq,
        "prev": prev,
        "recorded_at": _timestamp(at),
        "signer": {
            "key_id": signer.key_id,
            "algorithm": SIGNING_ALGORITHM,
            "public_key_sha256": key_fingerprint(signer.public_key_der()),
        },
        "residual_copies": dict(RESIDUAL_COPIES),
    }
    message = canonical_json(body)
    _check_size(message)
    signature = signer.sign(message)
    return body, hashlib.sha256(message).hexdigest(), base64.b64encode(signature).decode("ascii")


# ---------------------------------------------------------------- the stored chain


def _item_model() -> type[ReceiptEntryItem]:
    from rightsdesk.store.items.receipts import ReceiptEntryItem

    return ReceiptEntryItem


def _entry(item: ReceiptEntryItem) -> Entry:
    return Entry(
        body=json.loads(item.body),
        hash=item.entry_hash,
        signature=item.signature,
        key_hashes=tuple(item.key_hashes or ()),
        step_id=item.step_id,
    )


def entries(request_id: str) -> list[Entry]:
    """The request's chain as stored, in order (a strongly consistent read)."""
    from rightsdesk.store.items.requests import RequestItem

    model = _item_model()
    query = model.query(RequestItem.key(request_id), model.sk.startswith(model.SK_PREFIX), consistent_read=True)
    return [_entry(item) for item in query]


def record(
    request_id: str, outcome: Outcome, *, signer: Signer, step_id: str | None = None, at: datetime | None = None
) -> Entry:
    """Append a connector's outcome to the request's receipt, signed. With `step_id` (the caller's
    name for the step, e.g. the connector id and the run), a retried step gets the entry it
    already appended instead of a second one."""
    part = connector_body(outcome)
    return _append(request_id, part, signer, sorted(set(outcome.key_hashes)), step_id, at)


def seal(request_id: str, *, signer: Signer, at: datetime | None = None) -> Entry:
    """Close the chain as it stands: a signed entry naming how many entries came before it, with
    totals. An auditor's check that nothing was cut off the end rests on it. Sealing a chain that
    ends in a seal returns that seal; entries appended later (a kept record erased when its basis
    ends) need a new seal."""
    for _ in range(_APPEND_ATTEMPTS):
        chain = entries(request_id)
        if chain and chain[-1].is_seal:
            return chain[-1]
        entry = _write(request_id, chain, seal_body(chain), signer, (), None, at)
        if entry is not None:
            return entry
    raise Conflict(f"the receipt of request {request_id} kept changing while it was sealed", code="receipt_busy")


def _append(
    request_id: str,
    part: dict[str, Any],
    signer: Signer,
    key_hashes: Sequence[str],
    step_id: str | None,
    at: datetime | None,
) -> Entry:
    for _ in range(_APPEND_ATTEMPTS):
        chain = entries(request_id)
        if step_id is not None:
            for existing in chain:
                if existing.step_id == step_id:
                    return existing
        entry = _write(request_id, chain, part, signer, key_hashes, step_id, at)
        if entry is not None:
            return entry
    raise Conflict(f"the receipt of request {request_id} kept changing while it was appended to", code="receipt_busy")


def _write(
    request_id: str,
    chain: Sequence[Entry],
    part: dict[str, Any],
    signer: Signer,
    key_hashes: Sequence[str],
    step_id: str | None,
    at: datetime | None,
) -> Entry | None:
    """Sign and store the entry after `chain`; None if another writer took its number first."""
    from pynamodb.exceptions import PutError

    from rightsdesk.store.deletion import conditional_failure
    from rightsdesk.store.items.requests import RequestItem

    model = _item_model()
    at = at or clock.now()
    seq = len(chain) + 1
    prev = chain[-1].hash if chain else GENESIS
    body, digest, signature = sign_entry(request_id, seq, prev, part, signer, at)
    item = model(
        RequestItem.key(request_id),
        model.sort_key(seq),
        seq=seq,
        body=canonical_json(body).decode("utf-8"),
        entry_hash=digest,
        signature=signature,
        key_hashes=list(key_hashes) or None,
        step_id=step_id,
        recorded_at=at,
        expires_at=retention.expires_at(retention.Rule.SKELETON, at),
    )
    try:
        item.save(condition=model.sk.does_not_exist())
    except PutError as error:
        if conditional_failure(error):
            return None
        raise
    _held_like_the_request(item)
    return Entry(body=body, hash=digest, signature=signature, key_hashes=tuple(key_hashes), step_id=step_id)


def _held_like_the_request(item: ReceiptEntryItem) -> None:
    """An entry written while its request is under a legal hold is held too (rightsdesk.retention.holds).

    Read after the write: a hold placed before this read is seen here, and one placed after it
    finds the entry when it strips the trail's TTLs, so no entry escapes a hold. (An append that
    overlaps a release can leave an entry without its TTL: kept too long, never deleted early.)"""
    from rightsdesk.store.items.requests import RequestItem

    try:
        request = RequestItem.get(item.pk, RequestItem.SK, consistent_read=True, attributes_to_get=["legal_hold"])
    except RequestItem.DoesNotExist:
        return
    if request.legal_hold is not None:
        item.update(actions=[type(item).expires_at.remove()])


def export(request_id: str, chain: Sequence[Entry] | None = None) -> dict[str, Any]:
    """The request's receipt as the documented JSON export (docs/connectors.md, Receipts): what
    `verify` and `python -m rightsdesk_cli.receipt_verify` check. Nothing in it outside the
    entries' bodies is trusted by the verifier; the rest is there for a reader."""
    chain = list(entries(request_id) if chain is None else chain)
    last = chain[-1] if chain else None
    signer = last.body["signer"] if last else None
    return {
        "format": FORMAT,
        "request_id": request_id,
        "canonical_form": "JSON, keys sorted, no whitespace, UTF-8 (RFC 8785 for these values)",
        "signing": signer,
        "head": None if last is None else {"seq": last.seq, "hash": last.hash, "sealed": last.is_seal},
        "summary": summary([entry.body for entry in chain]),
        "residual_copies": dict(RESIDUAL_COPIES),
        "entries": [entry.as_export() for entry in chain],
    }


# ---------------------------------------------------------------- offline verification


@dataclass(frozen=True)
class Problem:
    """What is wrong with one entry: its position in the export (1-based; 0 for the document),
    the number its body claims, a stable code and a sentence."""

    position: int
    seq: Any
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "seq": self.seq, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Verification:
    request_id: Any
    entries: int
    sealed: bool
    problems: tuple[Problem, ...]
    head: str | None

    @property
    def valid(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "valid": self.valid,
            "sealed": self.sealed,
            "entries": self.entries,
            "head": self.head,
            "problems": [problem.as_dict() for problem in self.problems],
        }


def load_public_key(data: bytes) -> Any:
    """An EC P-256 public key from PEM or DER (SubjectPublicKeyInfo, as KMS GetPublicKey gives it)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    try:
        key = load_pem_public_key(data) if data.lstrip().startswith(b"-----BEGIN") else load_der_public_key(data)
    except UnsupportedAlgorithm as error:
        raise ValueError(str(error)) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an EC P-256 public key")
    return key


def verify(document: Mapping[str, Any], public_key: bytes | Sequence[bytes]) -> Verification:
    """Check an exported receipt with the public key alone (PEM or DER): every entry's signature,
    its number (1, 2, ... in order: nothing removed, inserted or moved), its link to the entry
    before, the digest of its key hashes, a seal's count and totals. `sealed` says the chain ends in
    a seal, without which entries cut off the end cannot be ruled out.

    Several keys may be given (a chain that spans a replaced signing key): each entry is checked
    with the key its body names by fingerprint, and an entry naming none of them is a problem.
    Raises ValueError for a key that is not an EC P-256 public key; everything wrong with the
    document is a Problem."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    given = [public_key] if isinstance(public_key, (bytes, bytearray)) else list(public_key)
    if not given:
        raise ValueError("no public key given")
    public_keys = {}
    for data in given:
        loaded = load_public_key(bytes(data))
        public_keys[key_fingerprint(loaded.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))] = loaded
    first_key = next(iter(public_keys.values()))
    problems: list[Problem] = []
    request_id = document.get("request_id") if isinstance(document, Mapping) else None
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        problems.append(Problem(0, None, "format", f"not a {FORMAT} receipt"))
    listed = document.get("entries") if isinstance(document, Mapping) else None
    if not isinstance(listed, list):
        problems.append(Problem(0, None, "format", "no list of entries"))
        listed = []
    if not isinstance(request_id, str):
        problems.append(Problem(0, None, "format", "no request id"))
    prev = GENESIS
    bodies: list[Mapping[str, Any]] = []
    for position, exported in enumerate(listed, start=1):
        body = exported.get("body") if isinstance(exported, Mapping) else None
        seq = body.get("seq") if isinstance(body, Mapping) else None

        def problem(code: str, message: str, position: int = position, seq: Any = seq) -> None:
            problems.append(Problem(position, seq, code, message))

        if not isinstance(body, Mapping):
            problem("format", "the entry has no body")
            prev = ""
            continue
        try:
            message = canonical_json(dict(body))
        except ValueError as error:
            problem("format", f"the body has no canonical form: {error}")
            prev = ""
            continue
        digest = hashlib.sha256(message).hexdigest()
        if len(message) > MAX_SIGNED_BYTES:
            problem("size", f"the body is {len(message)} bytes; no entry signed by KMS is over {MAX_SIGNED_BYTES}")
        if body.get("format") != FORMAT:
            problem("format", f"the body is not a {FORMAT} entry")
        if body.get("request_id") != request_id:
            problem("request", "the entry belongs to another request")
        if seq != position:
            problem("order", f"entry {position} is numbered {seq!r}: an entry was removed, inserted or moved")
        if body.get("prev") != prev:
            problem(
                "link", "its link does not match the entry before it: an entry was removed, inserted, moved or changed"
            )
        signer = body.get("signer") if isinstance(body.get("signer"), Mapping) else {}
        key = public_keys.get(str(signer.get("public_key_sha256")))
        if key is None:
            problem("key", "it names another signing key than the public key given")
            key = first_key
        try:
            signature = base64.b64decode(str(exported.get("signature", "")), validate=True)
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            problem(
                "signature",
                "the signature does not verify with the public key: the entry was changed or signed by another key",
            )
        if exported.get("hash") != digest:
            problem("hash", "the hash listed with it is not the hash of its body")
        kind = body.get("entry")
        if kind == "connector":
            listed_hashes = exported.get("key_hashes")
            committed = body.get("keys") if isinstance(body.get("keys"), Mapping) else {}
            if (
                not isinstance(listed_hashes, list)
                or not all(isinstance(h, str) for h in listed_hashes)
                or len(listed_hashes) != committed.get("count")
                or keys_digest(listed_hashes) != committed.get("digest")
            ):
                problem("keys", "its list of key hashes is not the one the signed body committed to")
        elif kind == "seal":
            try:
                stated = (body.get("covers"), body.get("summary"))
                expected = (position - 1, summary(bodies))
            except (KeyError, TypeError, AttributeError):
                stated, expected = (None, None), (position - 1, None)
            if stated[0] != expected[0]:
                problem("seal", f"the seal closes {body.get('covers')!r} entries; {position - 1} come before it")
            elif stated != expected:
                problem("seal", "the seal's totals are not those of the entries it closes")
        else:
            problem("format", f"unknown entry kind {kind!r}")
        bodies.append(body)
        prev = digest
    last = listed[-1] if listed else None
    last_body = last.get("body") if isinstance(last, Mapping) else None
    sealed = isinstance(last_body, Mapping) and last_body.get("entry") == "seal"
    return Verification(
        request_id=request_id,
        entries=len(listed),
        sealed=sealed,
        problems=tuple(problems),
        head=prev if listed and prev else None,
    )
