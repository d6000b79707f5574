"""Connector executions (rightsdesk.connectors.execution): one item per run of a request's
connectors, one per connector step of the request, and the due index of runs waiting out a grace
period.

Keys:
  REQ#<id>  EXECUTION#<run, 4 digits>  one run (1, 2, ...: a resume is a new run); the latest is the
                                       last in sort order
  REQ#<id>  EXPORTPART#<connector id>  one connector's records for an export (7 days)
  REQ#<id>  EXECSTEP#<connector id>    the request's step of one connector, across runs: a step
                                       recorded done is never done again
GSI2: EXECDUE / <not_before ISO>#<request id>: runs waiting out the erasure grace period, so the
due check reads only the runs that are due (never a scan); the key is removed when the run starts.

Ids, states, counts and keyed hashes only; the identities a run resolved are held as one KMS-sealed
value (rightsdesk.platform.sealing, purpose `execution_identities`), removed when the run succeeds.
Kept with the request skeleton (TTL).
"""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute

from rightsdesk.store.items.table import _Item, _TableMeta

DUE_INDEX_KEY = "EXECDUE"


class ExecutionItem(_Item):
    class Meta(_TableMeta):
        pass

    SK_PREFIX = "EXECUTION#"

    execution_id = UnicodeAttribute()
    request_id = UnicodeAttribute()
    run = NumberAttribute()
    status = UnicodeAttribute()  # waiting | running | stopped | failed | parked | succeeded
    action = UnicodeAttribute()  # erase | export
    dry_run = BooleanAttribute(default=False)
    initiated_by = UnicodeAttribute()  # operator | system | controller
    controller_id = UnicodeAttribute(null=True)  # a controller's (processor) run: whose
    tenant_id = UnicodeAttribute(null=True)  # the controller's tenant, an id (not personal data)
    not_before = UTCDateTimeAttribute(null=True)
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute()
    stages = UnicodeAttribute(null=True)  # JSON: the planned stages of connector ids, in run order
    sealed_identities = UnicodeAttribute(null=True)
    sfn_execution_arn = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)  # why parked, failed or stopped: a stable word

    @classmethod
    def sort_key(cls, run: int) -> str:
        return f"{cls.SK_PREFIX}{run:04d}"


class ExecutionStepItem(_Item):
    class Meta(_TableMeta):
        pass

    SK_PREFIX = "EXECSTEP#"

    connector_id = UnicodeAttribute()
    state = UnicodeAttribute()  # running | retrying | done | failed
    run = NumberAttribute()
    execution_id = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    first_attempt_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute()
    outcome = UnicodeAttribute(null=True)  # JSON of rightsdesk.connectors.base.Outcome: counts and hashes

    @classmethod
    def sort_key(cls, connector_id: str) -> str:
        return f"{cls.SK_PREFIX}{connector_id}"


class ExportPartItem(_Item):
    """One connector's records for an access or portability request's export, REQ#<id> /
    EXPORTPART#<connector id> (rightsdesk.connectors.export_store): personal data, kept 7 days."""

    class Meta(_TableMeta):
        pass

    SK_PREFIX = "EXPORTPART#"

    connector_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    count = NumberAttribute(default=0)
    records = UnicodeAttribute(null=True)  # JSON array, when it fits the item
    s3_key = UnicodeAttribute(null=True)  # otherwise, where in the ExportBucket
