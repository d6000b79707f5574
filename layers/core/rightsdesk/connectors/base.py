"""The one interface every connector kind implements, and the outcome a run of it leaves.

A connector is built for one request from a definition and a session (rightsdesk.connectors.access):

- `find(identities) -> Found`: the subject's records, counted, with what is needed to act on
  them, and the identities they yield for other connectors (rightsdesk.connectors.identity_graph).
- `export(found) -> list[dict]`: the records as JSON-able dicts (access and portability).
- `erase(found) -> Erased`: removes them. Idempotent: a second run with the same `found` changes
  nothing more and does not fail; every write is conditional on the record still being the subject's.
- `verify(identities) -> int`: asks the store again after an erasure; 0 means nothing remains.
- `rectify(found, changes) -> Rectified` (kinds whose definition declares `rectifiable`): writes the
  corrected values, conditional on the record still being the subject's; idempotent (a value
  already set is counted `unchanged`). `unrectified(identities, changes) -> int` re-reads.

`plan` (a dry run: find and count, never a write), `erase_and_verify`, `rectify_and_verify` and `export_records` wrap those calls in the
rules every kind shares: the per-connector ceiling (more records than it: `parked_too_many`,
nothing erased), records that yield two values for one identity (`parked_ambiguous`, nothing
erased), the dry state of a connector not yet enabled, and an `Outcome` that holds
counts and keyed hashes only: never an identity, a key or a record in the clear.

Legal exceptions (Art. 17(3)): records a definition's `keep` rules match are not erased. They
are counted (`kept`), named with their basis, period and end date (`legal_exceptions`), left out
of the re-query's `remaining`, and scheduled for erasure when their period ends
(rightsdesk.connectors.kept_records) before anything else is erased; a run that keeps
everything it found ends `kept_for_legal_basis`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from rightsdesk.connectors.kept_records import keep_until
from rightsdesk.kernel import clock
from rightsdesk.platform import hashing

Identities = Mapping[str, str]  # identity kind -> value ("email" -> the verified address)
Action = Literal["find", "export", "erase", "verify", "rectify"]

DONE = "done"
NOTHING_FOUND = "nothing_found"
FAILED = "failed"
KEPT_FOR_LEGAL_BASIS = "kept_for_legal_basis"
PARKED_AMBIGUOUS = "parked_ambiguous"
PARKED_TOO_MANY = "parked_too_many"
RESULTS = frozenset({DONE, NOTHING_FOUND, FAILED, KEPT_FOR_LEGAL_BASIS, PARKED_AMBIGUOUS, PARKED_TOO_MANY})

_KEY_PURPOSE = "connector_key"
_IDENTITY_PURPOSE = "connector_identity"


def key_hash(connector_id: str, key: str) -> str:
    """The keyed hash that stands for a record's key (a table key, an object key) in outcomes."""
    return hashing.keyed_hash(_KEY_PURPOSE, f"{connector_id}\x00{key}")


def identity_hash(kind: str, value: str) -> str:
    """The keyed hash that stands for an identity (an email, a user id) in outcomes."""
    return hashing.keyed_hash(_IDENTITY_PURPOSE, f"{kind}\x00{value}")


class ConnectorFailure(Exception):
    """A connector could not do its work. `code` is a stable word (`object_too_large`,
    `access_denied`, ...); `key_hash` names the record concerned, hashed. Never personal data."""

    def __init__(self, code: str, *, key_hash: str | None = None):
        super().__init__(code)
        self.code = code
        self.key_hash = key_hash


class AwaitingCallback(Exception):
    """The product took the work on and will report through the callback URL it was offered
    (rightsdesk.connectors.callbacks): the step waits, it has neither succeeded nor failed."""


@dataclass(frozen=True)
class Located:
    """One record of the subject: `key` says where it is (canonical text, hashed in outcomes),
    `handle` what the kind needs to act on it (its own shape), `data` the record for export."""

    key: str
    handle: Any = None
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Found:
    """What `find` saw. `derived`: identity kind -> the distinct values the records yield."""

    connector_id: str
    identities: Mapping[str, str]
    records: tuple[Located, ...] = ()
    derived: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def ambiguous(self) -> list[str]:
        """Identity kinds the records yield more than one value for (two users for one email)."""
        return sorted(kind for kind, values in self.derived.items() if len(set(values)) > 1)

    def key_hashes(self) -> list[str]:
        return sorted({key_hash(self.connector_id, record.key) for record in self.records})


@dataclass(frozen=True)
class Erased:
    """What `erase` did: records erased now, records already gone (a second run), records that
    changed hands since the find (the conditional write refused: no longer the subject's), and
    the keys touched."""

    erased: int = 0
    already_gone: int = 0
    changed_hands: int = 0
    touched: tuple[str, ...] = ()  # key hashes


@dataclass(frozen=True)
class Rectified:
    """What `rectify` did: records given the corrected values now, records that held them already
    (a second run), records gone or no longer the subject's since the find, and the keys touched."""

    rectified: int = 0
    unchanged: int = 0
    already_gone: int = 0
    changed_hands: int = 0
    touched: tuple[str, ...] = ()  # key hashes


@dataclass
class Outcome:
    """One connector's part in one request, as stored and later signed into a receipt.

    Holds counts and keyed hashes only. `remaining` is the re-query after an erasure (0: verified);
    None when nothing was erased. `failure` is a stable code (and a key hash) when `result` is failed.
    """

    connector_id: str
    kind: str
    role_arn: str | None
    action: str
    result: str
    started_at: str
    finished_at: str = ""
    dry_run: bool = False
    found: int = 0
    erased: int = 0
    kept: int = 0  # kept for a legal basis (Art. 17(3)): the definition's `keep` rules
    # One per keep rule that kept records: {basis, period_days, keep_until, kept}. No personal data.
    legal_exceptions: list[dict[str, Any]] = field(default_factory=list)
    changed_hands: int = 0  # no longer the subject's when erased: the conditional write refused
    remaining: int | None = None
    touched: list[str] = field(default_factory=list)
    identities: dict[str, str] = field(default_factory=dict)  # kind -> identity_hash
    rectified: int = 0  # a rectification: records given the corrected values (no value is kept here)
    failure: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Check:
    """One permission proved (or not) by a probe: `operation` (`dynamodb:DeleteItem`), `result`
    (`allowed`, `denied`, `failed`) and, unless allowed, the AWS error code or our own word."""

    operation: str
    result: str
    code: str | None = None


PROBE_PREFIX = "rightsdesk-probe-"


def probe_value() -> str:
    """An identity value nobody has: what a probe looks for."""
    import secrets

    return PROBE_PREFIX + secrets.token_hex(8)


_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorizedException"})


def checked(operation: str, call: Any, *expected_codes: str) -> Check:
    """Run `call()`; success or an error code in `expected_codes` (what a call that changes
    nothing answers: ConditionalCheckFailedException, NoSuchKey) proves the permission."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the probe reports every answer
        code = ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")
        code = str(code) if code else (error.code if isinstance(error, ConnectorFailure) else type(error).__name__)
        if code in expected_codes:
            return Check(operation, "allowed")
        return Check(operation, "denied" if code in _DENIED_CODES else "failed", code)
    return Check(operation, "allowed")


class Connector(ABC):
    """Base of every kind. Subclasses set `kind` and implement find, export and erase."""

    kind: str = ""
    # The request it acts for (set by rightsdesk.connectors.build): kept records are scheduled under it.
    request_id: str | None = None

    def __init__(self, definition: Any, session: Any = None):
        self.definition = definition
        self.session = session

    @property
    def id(self) -> str:
        return str(self.definition.id)

    @property
    def needs(self) -> frozenset[str]:
        return frozenset(self.definition.needs)

    @property
    def yields(self) -> dict[str, str]:
        return dict(self.definition.yields)

    @abstractmethod
    def find(self, identities: Identities) -> Found: ...

    @abstractmethod
    def export(self, found: Found) -> list[dict[str, Any]]: ...

    @abstractmethod
    def erase(self, found: Found) -> Erased: ...

    def verify(self, identities: Identities) -> int:
        """Records that still hold the subject, asked of the store again (strongly consistent
        where the store offers it)."""
        return self.find(identities).count

    @property
    def rectifiable(self) -> dict[str, str]:
        """Subject-facing field -> the store's attribute a correction is written to (empty: the
        kind or the definition corrects nothing)."""
        return dict(getattr(self.definition, "rectifiable", None) or {})

    def rectify(self, found: Found, changes: Mapping[str, str]) -> Rectified:
        """Write `changes` (the store's attribute -> the corrected value) into the found records."""
        raise ConnectorFailure("rectify_not_supported")

    def find_to_rectify(self, identities: Identities) -> Found:
        """The records a correction applies to (kinds whose find narrows to erasable data override)."""
        return self.find(identities)

    def unrectified(self, identities: Identities, changes: Mapping[str, str]) -> int:
        """Records of the subject's that, read again, do not hold every corrected value."""
        again = self.find_to_rectify(identities)
        return sum(
            1
            for record in again.records
            if any(str((record.data or {}).get(name)) != value for name, value in changes.items())
        )

    def kept_by(self, record: Located, identities: Identities) -> int | None:
        """The index of the definition's first keep rule the record meets (a legal exception), or
        None. Kinds that support `keep` override it."""
        return None

    def probe(self) -> list[Check]:
        """Prove access without changing data (for `connectors test`): each permission the kind
        needs is exercised by a call that cannot change anything (a find for an identity nobody
        has, a conditional write on a record that does not exist). Kinds override it."""
        return []

    def _found(self, identities: Identities, records: list[Located]) -> Found:
        """A Found whose `derived` collects the `yields` attributes of the records' data."""
        derived: dict[str, list[str]] = {}
        for kind, attribute in self.yields.items():
            for record in records:
                value = (record.data or {}).get(attribute)
                if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                    values = derived.setdefault(kind, [])
                    if str(value) not in values:
                        values.append(str(value))
        return Found(self.id, dict(identities), tuple(records), {k: tuple(v) for k, v in derived.items()})


# ------------------------------------------------------------------ the shared run rules


def _outcome(connector: Connector, action: str, identities: Identities, started: datetime) -> Outcome:
    return Outcome(
        connector_id=connector.id,
        kind=connector.kind,
        role_arn=getattr(connector.definition, "role_arn", None),
        action=action,
        result=NOTHING_FOUND,
        started_at=clock.isoformat(started),
        identities={kind: identity_hash(kind, value) for kind, value in sorted(identities.items())},
    )


def _failed(outcome: Outcome, error: BaseException) -> Outcome:
    outcome.result = FAILED
    if isinstance(error, ConnectorFailure):
        outcome.failure = {"code": error.code, **({"key_hash": error.key_hash} if error.key_hash else {})}
    else:
        # An AWS error's code (AccessDenied, ResourceNotFoundException); never its message.
        code = ((getattr(error, "response", None) or {}).get("Error") or {}).get("Code")
        outcome.failure = {"code": str(code) if code else type(error).__name__}
    return outcome


def _finish(outcome: Outcome) -> Outcome:
    outcome.finished_at = clock.isoformat(clock.now())
    return outcome


def _kept(connector: Connector, found: Found) -> dict[int, list[Located]]:
    """The found records a keep rule holds back, by the rule's index."""
    kept: dict[int, list[Located]] = {}
    if not getattr(connector.definition, "keep_rules", ()):
        return kept
    for record in found.records:
        rule = connector.kept_by(record, found.identities)
        if rule is not None:
            kept.setdefault(rule, []).append(record)
    return kept


def _exceptions(connector: Connector, kept: Mapping[int, list[Located]], now: datetime) -> list[dict[str, Any]]:
    rules = connector.definition.keep_rules
    return [
        {
            "basis": rules[index].basis,
            "period_days": rules[index].period_days,
            "keep_until": clock.isoformat(keep_until(now, rules[index].period_days)),
            "kept": len(records),
        }
        for index, records in sorted(kept.items())
    ]


def _remaining(connector: Connector, identities: Identities) -> int:
    """The re-query after an erasure, records a keep rule holds back not counted."""
    if not getattr(connector.definition, "keep_rules", ()):
        return connector.verify(identities)
    again = connector.find(identities)
    return sum(1 for record in again.records if connector.kept_by(record, again.identities) is None)


def plan(connector: Connector, identities: Identities) -> tuple[Outcome, Found | None]:
    """The dry run: find and count, never write. Over the ceiling the outcome says so already."""
    outcome = _outcome(connector, "find", identities, clock.now())
    outcome.dry_run = True
    try:
        found = connector.find(identities)
    except Exception as error:  # noqa: BLE001 - every failure becomes an outcome the operator sees
        return _finish(_failed(outcome, error)), None
    outcome.found = found.count
    outcome.touched = found.key_hashes()
    kept = _kept(connector, found)
    outcome.kept = sum(len(records) for records in kept.values())
    outcome.legal_exceptions = _exceptions(connector, kept, clock.now())
    if found.ambiguous:
        outcome.result = PARKED_AMBIGUOUS
    elif found.count > connector.definition.ceiling:
        outcome.result = PARKED_TOO_MANY
    elif found.count and outcome.kept == found.count:
        outcome.result = KEPT_FOR_LEGAL_BASIS
    elif found.count:
        outcome.result = DONE
    return _finish(outcome), found


def erase_and_verify(connector: Connector, identities: Identities, found: Found | None = None) -> Outcome:
    """Erase the subject's records and ask again. A connector not yet enabled only plans; more
    records than the ceiling park (`parked_too_many`) and nothing is erased.

    `found` is a find made earlier in the same run (the identity graph's); without it, one is made."""
    started = clock.now()
    if connector.definition.dry:
        outcome, _ = plan(connector, identities)
        return outcome
    outcome = _outcome(connector, "erase", identities, started)
    try:
        if found is None:
            found = connector.find(identities)
        outcome.found = found.count
        if found.ambiguous or found.count > connector.definition.ceiling:
            outcome.result = PARKED_AMBIGUOUS if found.ambiguous else PARKED_TOO_MANY
            outcome.touched = found.key_hashes()
            return _finish(outcome)
        kept = _kept(connector, found)
        if kept:
            # Scheduled before anything is erased: a run that fails here has erased nothing, and
            # a retry schedules the same records again (one item per request and connector).
            from rightsdesk.connectors import kept_records

            outcome.legal_exceptions = kept_records.schedule(connector, found.identities, kept, at=started)
            outcome.kept = sum(len(records) for records in kept.values())
        held = {id(record) for records in kept.values() for record in records}
        to_erase = replace(found, records=tuple(record for record in found.records if id(record) not in held))
        erased = connector.erase(to_erase) if to_erase.count else Erased()
        outcome.erased = erased.erased
        outcome.changed_hands = erased.changed_hands
        outcome.touched = sorted(set(erased.touched) | set(found.key_hashes()))
        outcome.remaining = _remaining(connector, identities)
    except AwaitingCallback:
        raise
    except Exception as error:  # noqa: BLE001 - every failure becomes an outcome the operator sees
        return _finish(_failed(outcome, error))
    if outcome.remaining:
        outcome.result = FAILED
        outcome.failure = {"code": "records_remain"}
    elif outcome.kept and outcome.kept == outcome.found:
        outcome.result = KEPT_FOR_LEGAL_BASIS
    elif outcome.found:
        outcome.result = DONE
    return _finish(outcome)


def export_records(
    connector: Connector, identities: Identities, found: Found | None = None
) -> tuple[Outcome, list[dict[str, Any]]]:
    """The subject's records for access and portability, and the outcome of gathering them (the
    outcome counts them; the records themselves go to the export, never into the outcome)."""
    outcome = _outcome(connector, "export", identities, clock.now())
    try:
        if found is None:
            found = connector.find(identities)
        outcome.found = found.count
        outcome.touched = found.key_hashes()
        if found.ambiguous or found.count > connector.definition.ceiling:
            outcome.result = PARKED_AMBIGUOUS if found.ambiguous else PARKED_TOO_MANY
            return _finish(outcome), []
        records = connector.export(found) if found.count else []
    except AwaitingCallback:
        raise
    except Exception as error:  # noqa: BLE001 - every failure becomes an outcome the operator sees
        return _finish(_failed(outcome, error)), []
    outcome.result = DONE if records else NOTHING_FOUND
    return _finish(outcome), records


def corrections_for(connector: Connector, changes: Mapping[str, str]) -> dict[str, str]:
    """The corrections this connector applies: its store's attribute -> the value, for each
    subject-facing field it declares rectifiable."""
    declared = connector.rectifiable
    return {declared[name]: value for name, value in sorted(changes.items()) if name in declared}


def rectify_and_verify(
    connector: Connector, identities: Identities, changes: Mapping[str, str], found: Found | None = None
) -> Outcome:
    """Write the approved corrections (`changes`: subject-facing field -> value) into the subject's
    records and read them again. A connector that declares none of the fields has nothing to do; a
    connector not yet enabled only plans; ambiguity and the ceiling park before anything is written.
    The outcome counts (`rectified`, `remaining`: records read again without the new values) and
    hashes keys: it never holds a value."""
    started = clock.now()
    corrections = corrections_for(connector, changes)
    if connector.definition.dry:
        outcome, _ = plan(connector, identities)
        return outcome
    outcome = _outcome(connector, "rectify", identities, started)
    if not corrections:
        return _finish(outcome)
    try:
        if found is None:
            found = connector.find_to_rectify(identities)
        outcome.found = found.count
        outcome.touched = found.key_hashes()
        if found.ambiguous or found.count > connector.definition.ceiling:
            outcome.result = PARKED_AMBIGUOUS if found.ambiguous else PARKED_TOO_MANY
            return _finish(outcome)
        done = connector.rectify(found, corrections) if found.count else Rectified()
        outcome.rectified = done.rectified
        outcome.changed_hands = done.changed_hands
        outcome.touched = sorted(set(done.touched) | set(found.key_hashes()))
        outcome.remaining = connector.unrectified(identities, corrections)
    except Exception as error:  # noqa: BLE001 - every failure becomes an outcome the operator sees
        return _finish(_failed(outcome, error))
    if outcome.remaining:
        outcome.result = FAILED
        outcome.failure = {"code": "records_not_rectified"}
    elif outcome.found:
        outcome.result = DONE
    return _finish(outcome)
