"""The stored connectors: what the operator added, whether each runs for real, and proving access.

Every connector definition is stored once (rightsdesk.store.items.connectors), validated
(rightsdesk.connectors.definitions) and without secrets. A new one is `disabled`: it runs dry
(finds and plans, never writes) until the operator enables it.

The identity graph over ALL stored connectors (dry ones take part in a run too: they find and
yield identities) must stay valid: an add that would leave a need nobody yields or a cycle is
refused with the reason, an enable checks it again, and a remove that would leave another
connector without the identity it needs is refused and names it. The set of ids lives in one item
with a version that every add and remove moves on conditionally, so two operators changing the set
at once cannot together make a graph neither of them checked.

Every change is one transaction: the connector, the set (for add and remove) and an audit event
naming the operator, each written on a condition. A removed connector is gone, and so is its S3
index (purged after the definition, `connector_index_purged`); its audit trail stays for its
retention time; its id may be added again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from rightsdesk.connectors import identity_graph
from rightsdesk.connectors.base import Check
from rightsdesk.connectors.definitions import DefinitionError, parse_definition
from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import Conflict, NotFound
from rightsdesk.store import audit
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.connectors import ConnectorItem, ConnectorSetItem
from rightsdesk.store.items.table import get_many, transaction

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

ENABLED, DISABLED = "enabled", "disabled"
# One BatchGetItem reads the whole set (its limit); far more than an operator's stores.
MAX_CONNECTORS = 100
PROBE_REQUEST_ID = "probe"  # the session name a test assumes the role with: rightsdesk-probe


@dataclass(frozen=True)
class StoredConnector:
    """A stored connector. `definition` is parsed, with `enabled` set from `state`; None (and
    `problem` says why) if the stored document no longer validates, so it can still be listed
    and removed."""

    connector_id: str
    kind: str
    state: str
    created_at: datetime
    updated_at: datetime
    state_changed_at: datetime | None
    document: dict[str, Any]
    definition: Any = None
    problem: str | None = None

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED


@dataclass(frozen=True)
class ProbeReport:
    """What `connectors test` found: one check per permission, `sts:AssumeRole` first."""

    connector_id: str
    kind: str
    role_arn: str | None
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Every check allowed; a kind with nothing to probe (http) proves nothing, so is not ok."""
        return bool(self.checks) and all(check.result == "allowed" for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "connector_id": self.connector_id,
            "kind": self.kind,
            "role_arn": self.role_arn,
            "ok": self.ok,
            "checks": [{"operation": c.operation, "result": c.result, "code": c.code} for c in self.checks],
        }


# ------------------------------------------------------------------ reading


def _stored(item: ConnectorItem) -> StoredConnector:
    document = json.loads(item.definition)
    definition, problem = None, None
    try:
        definition = parse_definition({**document, "enabled": item.state == ENABLED})
    except DefinitionError as error:
        problem = "; ".join(f"{field}: {why}" for field, why in sorted(error.fields.items())) or error.message
    return StoredConnector(
        connector_id=item.connector_id,
        kind=item.kind,
        state=item.state,
        created_at=item.created_at,
        updated_at=item.updated_at,
        state_changed_at=item.state_changed_at,
        document=document,
        definition=definition,
        problem=problem,
    )


def _set() -> ConnectorSetItem:
    try:
        return ConnectorSetItem.get(ConnectorSetItem.PK, ConnectorSetItem.SK, consistent_read=True)
    except ConnectorSetItem.DoesNotExist:
        return ConnectorSetItem(ConnectorSetItem.PK, ConnectorSetItem.SK, version=0)


def _items(ids: set[str]) -> list[ConnectorItem]:
    keys = [(ConnectorItem, ConnectorItem.key(i), ConnectorItem.SK) for i in sorted(ids)]
    return [item for item in get_many(keys, consistent_read=True) if item is not None]


def list_connectors() -> list[StoredConnector]:
    """Every stored connector, by id (strongly consistent: what the next run would use)."""
    return [_stored(item) for item in _items(set(_set().ids or ()))]


def _item(connector_id: str) -> ConnectorItem:
    try:
        return ConnectorItem.get(ConnectorItem.key(connector_id), ConnectorItem.SK, consistent_read=True)
    except ConnectorItem.DoesNotExist:
        raise NotFound(f"no connector {connector_id}", code="connector_not_found") from None


def is_stored(connector_id: str) -> bool:
    """Whether the connector is stored now (strongly consistent)."""
    try:
        _item(connector_id)
    except NotFound:
        return False
    return True


def get(connector_id: str) -> StoredConnector:
    """One stored connector; NotFound (`connector_not_found`) if there is none (or it was removed)."""
    return _stored(_item(connector_id))


def history(connector_id: str, limit: int = 20) -> list[AuditEvent]:
    """The connector's latest audit events, newest first (also after it was removed)."""
    return audit.latest(ConnectorItem.key(connector_id), limit)


# ------------------------------------------------------------------ the graph


def _graph(definitions: list[Any]) -> identity_graph.Plan:
    return identity_graph.order(definitions, identity_graph.SEEDS)


def _definitions(stored: list[StoredConnector]) -> list[Any]:
    broken = sorted(s.connector_id for s in stored if s.definition is None)
    if broken:
        raise Conflict(
            f"stored connectors no longer validate: {', '.join(broken)}; fix or remove them first",
            code="connector_invalid",
        )
    return [s.definition for s in stored]


def plan() -> identity_graph.Plan:
    """The stages every stored connector runs in (DefinitionError if the stored set is invalid)."""
    return _graph(_definitions(list_connectors()))


# ------------------------------------------------------------------ changes


def _transact(writes, conflict_message: str) -> None:
    try:
        with transaction() as tx:
            writes(tx)
    except TransactWriteError as error:
        # A failed condition is a race with another operator; throttling or an outage is not.
        if any(reason and reason.code == "ConditionalCheckFailed" for reason in error.cancellation_reasons):
            raise Conflict(conflict_message, code="connector_conflict") from error
        raise


def _audit(
    tx: TransactWrite,
    connector_id: str,
    action: str,
    actor: Actor,
    at: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
) -> None:
    event = audit.event(
        ConnectorItem.key(connector_id), action=action, actor=actor, at=at, from_status=from_status, to_status=to_status
    )
    tx.save(event, condition=AuditEvent.sk.does_not_exist())


def _set_unchanged(current: ConnectorSetItem):
    """The set is as read: the same version (or still absent)."""
    if not current.version:
        return ConnectorSetItem.pk.does_not_exist() | (ConnectorSetItem.version == 0)
    return ConnectorSetItem.version == current.version


def add(document: dict[str, Any], *, actor: Actor) -> StoredConnector:
    """Validate and store a new connector, disabled (it runs dry until `enable`).

    Refused: an invalid definition (DefinitionError naming each field), one that says
    `enabled: true` (a new connector runs dry first), an id already stored (Conflict
    `connector_exists`), or one that would make the identity graph over all stored connectors
    unsatisfiable or cyclic (DefinitionError with the reason)."""
    if not isinstance(document, dict):
        raise DefinitionError("the connector definition must be an object", fields={"definition": "not an object"})
    if document.get("enabled") is True:
        raise DefinitionError(
            "a new connector runs dry until it is enabled",
            fields={"enabled": "leave it out; enable the connector once `connectors test` passes"},
        )
    definition = parse_definition(document)
    current = _set()
    existing = list_connectors()
    if definition.id in {s.connector_id for s in existing}:
        raise Conflict(f"connector {definition.id} exists already", code="connector_exists")
    if len(existing) >= MAX_CONNECTORS:
        raise Conflict(f"at most {MAX_CONNECTORS} connectors can be stored", code="too_many_connectors")
    _graph([*_definitions(existing), definition])
    now = clock.now()
    stored_document = {key: value for key, value in definition.to_dict().items() if key != "enabled"}
    item = ConnectorItem(
        ConnectorItem.key(definition.id),
        ConnectorItem.SK,
        connector_id=definition.id,
        kind=definition.kind,
        definition=json.dumps(stored_document, sort_keys=True, separators=(",", ":")),
        state=DISABLED,
        created_at=now,
        updated_at=now,
    )

    def writes(tx: TransactWrite) -> None:
        tx.save(item, condition=ConnectorItem.pk.does_not_exist())
        tx.update(
            current,
            actions=[ConnectorSetItem.ids.add({definition.id}), ConnectorSetItem.version.set(int(current.version) + 1)],
            condition=_set_unchanged(current),
        )
        _audit(tx, definition.id, "connector_added", actor, now, to_status=DISABLED)

    _transact(writes, "the connectors changed meanwhile (another operator?); list them and try again")
    return get(definition.id)


def _change_state(connector_id: str, state: str, action: str, *, actor: Actor) -> StoredConnector:
    current = _set()
    item = _item(connector_id)
    if item.state == state:
        raise Conflict(f"connector {connector_id} is {state} already", code=f"connector_{state}")
    if state == ENABLED:
        stored = list_connectors()
        _graph(_definitions(stored))
    now = clock.now()
    previous = item.state

    def writes(tx: TransactWrite) -> None:
        tx.update(
            item,
            actions=[
                ConnectorItem.state.set(state),
                ConnectorItem.state_changed_at.set(now),
                ConnectorItem.updated_at.set(now),
            ],
            condition=ConnectorItem.updated_at == item.updated_at,
        )
        if state == ENABLED:  # the graph checked is the graph of the set now
            tx.condition_check(ConnectorSetItem, ConnectorSetItem.PK, ConnectorSetItem.SK, _set_unchanged(current))
        _audit(tx, connector_id, action, actor, now, from_status=previous, to_status=state)

    _transact(writes, f"connector {connector_id} changed meanwhile; try again")
    return get(connector_id)


def enable(connector_id: str, *, actor: Actor) -> StoredConnector:
    """Let the connector run for real (erase, not only plan) from the next run on."""
    return _change_state(connector_id, ENABLED, "connector_enabled", actor=actor)


def disable(connector_id: str, *, actor: Actor) -> StoredConnector:
    """Back to dry: the connector still finds (and yields identities to others), never writes."""
    return _change_state(connector_id, DISABLED, "connector_disabled", actor=actor)


@dataclass(frozen=True)
class Removal:
    """What `remove` did: whether the definition was deleted now (False: it was gone already, and
    only what was left of its S3 index was purged) and the index items deleted, by kind."""

    connector_id: str
    definition_removed: bool
    index_items: dict[str, int]

    @property
    def index_items_removed(self) -> int:
        return sum(self.index_items.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "connector_id": self.connector_id,
            "removed": True,
            "definition_removed": self.definition_removed,
            "index_items_removed": self.index_items_removed,
            "index_items": self.index_items,
        }


def remove(connector_id: str, *, actor: Actor) -> Removal:
    """Delete the stored definition for good, then every item of its S3 index. Refused (Conflict
    `connector_needed`) while another connector needs an identity only this one yields: remove
    that one first.

    The definition goes first, so the indexer (which reads the stored connectors per batch) stops
    writing for it; a batch that read them just before takes back its own writes
    (rightsdesk.connectors.s3_index.handle). A purge cut short (a crash, throttling) is finished by
    removing the id again: with the definition gone but index items left, `remove` purges the rest
    instead of answering `connector_not_found`. Deleted index items are audited once per remove
    (`connector_index_purged`, the counts as its cause), beside `connector_removed`."""
    from rightsdesk.connectors import s3_index_purge

    try:
        item = _item(connector_id)
    except NotFound:
        if not s3_index_purge.has_items(connector_id):
            raise
        item = None
    if item is not None:
        _remove_definition(item, actor=actor)
    counts = s3_index_purge.PurgeCounts()
    try:
        s3_index_purge.purge(connector_id, counts)
    finally:  # what an interrupted purge deleted is audited too; the next remove counts the rest
        if counts.total:
            event = audit.event(
                ConnectorItem.key(connector_id), action="connector_index_purged", actor=actor, cause=counts.cause()
            )
            event.save(condition=AuditEvent.sk.does_not_exist())
    return Removal(connector_id, item is not None, counts.as_dict())


def _remove_definition(item: ConnectorItem, *, actor: Actor) -> None:
    connector_id = item.connector_id
    current = _set()
    others = [s for s in list_connectors() if s.connector_id != connector_id]
    try:
        _graph(_definitions(others))
    except DefinitionError as error:
        needing = sorted(field.removesuffix(".needs") for field in error.fields if field.endswith(".needs"))
        raise Conflict(
            f"connector {connector_id} yields an identity that {', '.join(needing) or 'another connector'} "
            "needs; remove or change that one first",
            code="connector_needed",
        ) from None
    now = clock.now()

    def writes(tx: TransactWrite) -> None:
        tx.delete(item, condition=ConnectorItem.updated_at == item.updated_at)
        tx.update(
            current,
            actions=[
                ConnectorSetItem.ids.delete({connector_id}),
                ConnectorSetItem.version.set(int(current.version) + 1),
            ],
            condition=_set_unchanged(current),
        )
        _audit(tx, connector_id, "connector_removed", actor, now, from_status=item.state)

    _transact(writes, "the connectors changed meanwhile (another operator?); list them and try again")


# ------------------------------------------------------------------ proving access


def probe(connector_id: str, *, session_factory: Any = None) -> ProbeReport:
    """Prove the connector's access without changing data: assume its role (`sts:AssumeRole`),
    then every permission its kind needs (rightsdesk.connectors.base `probe`). A role that cannot
    be assumed stops there. The session is named `rightsdesk-probe` in the store's CloudTrail."""
    from rightsdesk.connectors import build
    from rightsdesk.connectors.base import checked

    stored = get(connector_id)
    definition = stored.definition
    if definition is None:
        raise Conflict(f"connector {connector_id} no longer validates: {stored.problem}", code="connector_invalid")
    role_arn = getattr(definition, "role_arn", None)
    checks: list[Check] = []
    session: Any = None
    if role_arn:
        if session_factory is None:
            from rightsdesk.connectors.access import assumed_role_session

            session_factory = assumed_role_session
        sessions: list[Any] = []
        assumed = checked("sts:AssumeRole", lambda: sessions.append(session_factory(definition, PROBE_REQUEST_ID)))
        checks.append(assumed)
        if assumed.result != "allowed":
            return ProbeReport(connector_id, definition.kind, role_arn, tuple(checks))
        session = sessions[0]
    connector = build(definition, PROBE_REQUEST_ID, session_factory=lambda _definition, _request: session)
    checks.extend(connector.probe())
    return ProbeReport(connector_id, definition.kind, role_arn, tuple(checks))


def describe(stored: StoredConnector) -> dict[str, Any]:
    """Everything about a stored connector an operator may see (a definition holds no secret)."""
    definition = stored.definition
    return {
        "connector_id": stored.connector_id,
        "kind": stored.kind,
        "state": stored.state,
        "runs": "for real" if stored.enabled else "dry (finds and plans, never writes)",
        "role_arn": stored.document.get("role_arn"),
        "needs": sorted(definition.needs) if definition is not None else None,
        "yields": sorted(definition.yields) if definition is not None else None,
        "created_at": clock.isoformat(stored.created_at),
        "updated_at": clock.isoformat(stored.updated_at),
        "state_changed_at": clock.isoformat(stored.state_changed_at) if stored.state_changed_at else None,
        "problem": stored.problem,
        "definition": stored.document,
    }
