"""The single RightsTable: what every item shares (keys, indexes, retention attributes), the shared
connection, transactions, and binding the models to a table. The items themselves live one module per
aggregate beside this one.

Keys (pk / sk):
  REQ#<id>      REQUEST            the request (personal fields purged after delivery)
  REQ#<id>      CHALLENGE          the hashed verification code (15 minutes)
  REQ#<id>      AUDIT#<at>#<n>     audit events (never personal data)
  REQ#<id>      RECEIPT#<seq>      signed, hash-chained erasure receipt entries (rightsdesk.connectors.receipts)
  REQ#<id>      KEPT#<connector>   records a connector kept for a legal basis, sealed, until their erasure
  KEPT_SWEEP    STATE              how far the erasure of kept records got (rightsdesk.connectors.kept_erasure)
  CTRL#<id>     CONTROLLER         a controller registered by the operator
  SITE#<key>    SITE               site key or domain -> controller id
  CTRL#<id>     AUDIT#<at>#<n>     audit events of registry changes
  SWEEP         STATE              how far the retention sweeper got (rightsdesk.retention.sweeper)
  APIKEY#<hash> APIKEY             keyed hash of a controller's API key -> controller id
  SUBJ#<controller>#<subject hash>#<year>  COUNTER   verified requests of a subject that year
Breach and policy notices (docs/notices.md):
  INCIDENT#<id> INCIDENT           a personal-data breach: its facts, deadlines and notice counts
  INCIDENT#<id> NOTICE#<kind>#<recipient>  one recipient's notice and its status (holds the address)
  INCIDENT#<id> AUDIT#<at>#<n>     audit events of the incident
  POLICY#<doc>  VERSION#<version>  a published policy version (the public archive)
  POLICY#<doc>  AUDIT#<at>#<n>     audit events of the document (who published each version)
  CONTACT#<email hash> CONTACT     a contact who subscribed to lists (rightsdesk.audience.contacts)
  CONTACT#<email hash> LIST#<list> the contact's membership of one list
  SUPPRESS#<email hash> SUPPRESSION  an address that bounced or complained (no address stored)
  UNSUB#<nonce> SPENT              an unsubscribe token that was used
  ISSUE#<digest> ISSUE             an issue of an optional list, read when each member's mail is sent
The operator's own data (docs/operations.md "Operator's own data"):
  CONTACT#<email hash> CONSENT#<purpose>  one purpose's consent: granted or withdrawn, with its history
  CONTACT#<email hash> REQ#<request id>   a request the subject made to the operator itself (ids only)
Global Privacy Control (rightsdesk.audience.gpc):
  GPC#<signal id> GPC                a visitor's signal a controller forwarded (the id: a keyed hash)
  GPC#<signal id> CONSENT#<purpose>  that visitor's ledger entries
Webhook delivery log (rightsdesk.routing.delivery_log), 90 days, TTL:
  DLOG#<controller> ATTEMPT#<at>#<id>      one delivery attempt: ids, status, latency, outcome
  DLOG#<controller> DELIVERY#<webhook id>  a delivery's latest outcome and its waiting redelivery
Connectors (rightsdesk.connectors.registry, docs/connectors.md "Configuring connectors"):
  CONNECTOR#<id> CONNECTOR         a connector definition (no secrets) and its state
  CONNECTOR#<id> AUDIT#<at>#<n>    audit events of the connector (added, enabled, disabled, removed)
  CONNECTORS    SET                the ids of every stored connector and the set's version
The S3 index (rightsdesk.connectors.s3_index, rightsdesk.store.items.s3_index), no TTL:
  S3IDX#<connector>#OBJECTS <key hash>     an indexed object: its key sealed, its subjects' hashes
  S3IDX#<connector>#ID#<identity hash> <key hash>  the subject's rows are in that object
  S3IDX#<connector>#UNINDEXED <key hash>   an object every find reads (too large, unreadable, ...)
  S3IDX#<connector>#READY <row prefix>     the prefix's earlier objects are indexed (backfilled)
Abuse guard: GUARD#<kind>#<keyed hash of the source IP> WINDOW#<epoch>  failed attempts, TTL'd
Account lifecycles (rightsdesk.lifecycle, rightsdesk.store.items.accounts):
  ACCOUNT#<account id> ACCOUNT     an account: class, state, last active day, holder's address and ids
  ACCOUNT#<account id> AUDIT#<at>#<n>  its audit events (ids and states only)
  ACCTSUBJ#<email hash> ACCOUNT#<id>   the account filed under its holder's keyed address hash
  REQ#<id>      SEED               the ids a lifecycle erasure's execution starts from (erasure_seed)
  LIFECYCLE     STATE              how far the lifecycle run got
GSI1 (gsi1pk, gsi1sk): CTRL#<id> / <status>#<created_at>#<id>, the controller's listings.
     INCIDENTS / <detected_at>#<id>; POLICIES / <doc>#<version>; LIST#<list> / <email hash>.
     AUDIT#<yyyy-mm> / <at>#<pk>#<sk>, deletion audit events by month (rightsdesk.store.deletion).
     DLOG#<controller>#<outcome> / <at>#<webhook id>, a controller's deliveries by latest outcome.
     ACCOUNTS#<class> / <last active day>#<account id>; LIFECYCLE#<year> / <at>#<action>#<pk> (lifecycle audit events).
GSI2 (gsi2pk, gsi2sk): EXP#<day bucket> / <due_at>#<pk>#<sk>, the sweeper's expiry index.
     KEEP#<day bucket> / <due_at>#<pk>#<sk>, kept records due for erasure (never in the sweeper's buckets).
     LIFE#<day bucket> / <due_at>#<pk>#<sk>, the lifecycle's due index (accounts, granted consents).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypeVar

from pynamodb.attributes import (
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from rightsdesk.platform import config, container_cache
from rightsdesk.platform.config import settings
from rightsdesk.platform.sessions import share_botocore_data

share_botocore_data()  # every model class opens its own connection: parse botocore's data once


class _TableMeta:
    table_name = settings().table_name
    region = config.aws_region()


class ControllerIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "GSI1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class ExpiryIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "GSI2"
        projection = KeysOnlyProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class _Item(Model):
    class Meta(_TableMeta):
        pass

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    # TTL: DynamoDB deletes the item some time after this epoch second; reads treat it as gone at once
    expires_at = NumberAttribute(null=True)
    # the next retention action the sweeper owes this item (rightsdesk.kernel.retention), indexed in GSI2
    retention_rule = UnicodeAttribute(null=True)
    retention_due_at = NumberAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    by_expiry = ExpiryIndex()
    # Set in the write just before a delete, so the stream handler can name the cause of the
    # REMOVE (rightsdesk.store.deletion); DynamoDB's TTL leaves no marker.
    deleted_by = UnicodeAttribute(null=True)
    deleted_at = NumberAttribute(null=True)

    _connection = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Each model its own connection: pynamodb reads a model's indexes from the model whose
        # connection it uses, and an inherited one (say _Item's, after a sweep) has no GSI1.
        cls._connection = None


@lru_cache(maxsize=1)
def connection() -> Connection:
    """One shared connection: each new one re-reads botocore's service model (~0.1 s)."""
    return Connection(region=config.aws_region())


def created_at() -> int:
    """When the table was created (epoch seconds): nothing in it can be due earlier, so a sweep
    of a due index with no progress recorded yet starts there (DescribeTable, once per sweep)."""
    created = _Item._get_connection().describe_table()["CreationDateTime"]
    return int(created.timestamp() if hasattr(created, "timestamp") else created)


def transaction() -> TransactWrite:
    """An all-or-nothing write of several items (conditions included) on the shared connection."""
    return TransactWrite(connection=connection())


_M = TypeVar("_M", bound=Model)


def get_many(keys: Sequence[tuple[type[_M], str, str]], *, consistent_read: bool = False) -> list[_M | None]:
    """Items of any models of the table, by (model, pk, sk), in one BatchGetItem call (another
    only for keys DynamoDB left unprocessed): each as its model, in the order asked, None where
    there is no item. At most 100 keys, BatchGetItem's limit."""
    if len(keys) > 100:
        raise ValueError("BatchGetItem reads at most 100 keys")
    models = {(pk, sk): model for model, pk, sk in keys}
    pending: list[dict[str, Any]] | None = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in models]
    found: dict[tuple[str, str], Model] = {}
    while pending:
        answer = _Item._get_connection().batch_get_item(pending, consistent_read=consistent_read)
        table = _Item.Meta.table_name
        for raw in answer.get("Responses", {}).get(table, []):
            key = (raw["pk"]["S"], raw["sk"]["S"])
            found[key] = models[key].from_raw_data(raw)
        pending = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys")
    return [found.get((pk, sk)) for _, pk, sk in keys]  # type: ignore[misc]


def _models() -> list[type[Model]]:
    """Every model class defined so far: the table's own item class and all its subclasses."""
    found: list[type[Model]] = [_Item]
    for model in found:
        found.extend(model.__subclasses__())
    return found


def bind_table(table_name: str, region: str | None = None) -> None:
    """Point every model at another table (tests, the CLI and the local runner name their own).

    Models defined later (an item module imported after this call) inherit the table from
    _TableMeta, so binding does not depend on which item modules a process has loaded yet."""
    if region:
        config.use_region(region)
    _point_models(table_name=table_name, region=region or _TableMeta.region)


def set_region(region: str) -> None:
    """Point every model at another region (the CLI learns its region after the models are loaded)."""
    _point_models(region=region)


def _point_models(**meta: str) -> None:
    """Set Meta attributes on _TableMeta (for models loaded later) and on every model loaded now,
    dropping their connections so the next call opens one with the new settings."""
    for name, value in meta.items():
        setattr(_TableMeta, name, value)
    for model in _models():
        for name, value in meta.items():
            setattr(model.Meta, name, value)
        model._connection = None
    connection.cache_clear()
    container_cache.forget_all()  # what was read from the table before is not this table's
