"""Erasure requests the operator opens itself (actor `lifecycle`): an account inactive past its
deletion threshold, an account its holder cancelled, a contact whose consent expired.

`open_erasure` writes a verified erasure request of the operator's own site (delivery internal,
template parameter LifecycleSite) in one transaction with its audit event, the ids the execution
starts from (ErasureSeedItem, REQ#<id> / SEED) and the account's mark for deletion; then it asks
the dispatcher to route it. From there the request follows every erasure's path: dispatcher ->
in_progress -> own_requests.carry_out -> the connectors' execution (rightsdesk.connectors.execution,
which starts from the request's verified email by default;
rightsdesk.store.erasure_seeds.execution_identities adds the ids the account was known by) -> the
operator's own-data erasure and the completion mail. If that erasure is stopped (its grace period's
cancel link), the account comes back with the product's next activity report.

Nothing is verified by code: the operator is the one who knows the account and its address (the
product reported them). A lost routing message is recovered by the deadline watch, which
re-routes verified requests left unrouted.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import TransactWriteError

from rightsdesk.kernel import clock, deadlines, retention
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import Conflict, NotFound
from rightsdesk.kernel.rights import RequestType
from rightsdesk.kernel.status import Status
from rightsdesk.platform import config, hashing
from rightsdesk.routing import controller_lookup
from rightsdesk.store import audit, deletion, outbox
from rightsdesk.store.erasure_seeds import execution_identities, opened_for  # noqa: F401 (the lifecycle's names for them)
from rightsdesk.store.items.accounts import AccountItem, ErasureSeedItem
from rightsdesk.store.items.audience import ConsentItem
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.requests import RequestItem
from rightsdesk.store.items.table import transaction
from rightsdesk.store.lifecycle import listing_key

ACTOR = "lifecycle"
OPENED = "erasure_opened"


def lifecycle_event(record_pk: str, *, action: str, actor: str, at: datetime, **fields) -> AuditEvent:
    """An audit event the annual report counts: also filed by year (GSI1 LIFECYCLE#<yyyy>)."""
    event = audit.event(record_pk, action=action, actor=actor, at=at, **fields)
    event.gsi1pk = f"LIFECYCLE#{at.year}"
    event.gsi1sk = f"{clock.isoformat(at)}#{action}#{record_pk}"
    return event


def operator_site():
    """The operator's own controller, under whose site the lifecycle opens its requests."""
    site = config.lifecycle_site()
    controller = controller_lookup.resolve_site(site)
    if controller is None or controller.delivery != DeliveryMode.INTERNAL:
        raise NotFound(f"the lifecycle site {site!r} is not a site of the operator's own (delivery internal)")
    return site, controller


def open_erasure(
    *,
    email: str | None,
    cause: str,
    subject_hash: str | None = None,
    locale: str | None = None,
    identities: dict[str, str] | None = None,
    account: AccountItem | None = None,
    consent: ConsentItem | None = None,
    at: datetime | None = None,
) -> str:
    """Open a verified internal erasure request for the subject; returns its id.

    With `account`, the account is marked for deletion in the same transaction, on condition that
    it is as read (state and due time) and under no legal hold; with `consent`, that the consent is
    still granted as read. Conflict if that condition fails (activity, a hold, a withdrawal won)."""
    site, controller = operator_site()
    at = at or clock.now()
    request_id = hashing.new_id("dsr")
    pk = RequestItem.key(request_id)
    kind = RequestType.ERASURE.value
    request = RequestItem(
        pk,
        RequestItem.SK,
        request_id=request_id,
        controller_id=controller.controller_id,
        site=site,
        request_type=kind,
        status=Status.VERIFIED.value,
        locale=locale or config.DEFAULT_LOCALE,
        relationship="self",
        email=email,
        subject_hash=subject_hash or (hashing.email_hash(email) if email else None),
        created_at=at,
        verified_at=at,
        due_at=deadlines.due_at(at, request_type=kind, sla_days=controller.sla_days),
        updated_at=at,
        expires_at=retention.expires_at(retention.Rule.SKELETON, at),
        gsi1pk=f"CTRL#{controller.controller_id}",
        gsi1sk=listing_key(Status.VERIFIED.value, at, request_id),
        **retention.schedule(retention.Rule.SKELETON, at, pk, RequestItem.SK),
    )
    seed = ErasureSeedItem(
        pk,
        ErasureSeedItem.SK,
        identities=identities or None,
        account_class=account.account_class if account is not None else None,
        cause=cause,
        created_at=at,
        expires_at=retention.expires_at(retention.Rule.ERASURE_SEED, at),
        **retention.schedule(retention.Rule.ERASURE_SEED, at, pk, ErasureSeedItem.SK),
    )
    opened = lifecycle_event(pk, action=OPENED, actor=ACTOR, at=at, to_status=Status.VERIFIED.value, cause=cause)
    try:
        with transaction() as tx:
            tx.save(request, condition=RequestItem.pk.does_not_exist())
            tx.save(seed, condition=ErasureSeedItem.pk.does_not_exist())
            tx.save(opened, condition=AuditEvent.sk.does_not_exist())
            if account is not None:
                tx.update(account, actions=_account_marked(at), condition=_account_as_read(account))
                tx.save(
                    lifecycle_event(
                        account.pk, action=OPENED, actor=ACTOR, at=at, from_status=account.state, cause=cause
                    ),
                    condition=AuditEvent.sk.does_not_exist(),
                )
            if consent is not None:
                # Off the due index with the request's opening: the erasure deletes the record.
                tx.update(
                    consent,
                    actions=[ConsentItem.gsi2pk.remove(), ConsentItem.gsi2sk.remove()],
                    condition=(ConsentItem.state == consent.state) & (ConsentItem.gsi2sk == consent.gsi2sk),
                )
    except TransactWriteError as error:
        if deletion.conditional_failure(error):
            raise Conflict("the account or consent changed meanwhile", code="changed") from None
        raise
    if account is not None:
        _delete_account(account)
    outbox.enqueue_delivery(request_id=request_id, event="route")
    return request_id


def _account_marked(at: datetime) -> list:
    """The account's personal fields go with its erasure: off the due index, marked for the
    deletion that follows (the stream handler audits it under Rule.ACCOUNT_RECORD), with a TTL in
    case that delete never comes."""
    epoch = int(at.timestamp())
    return [
        AccountItem.deleted_by.set(deletion.Cause.ERASURE.value),
        AccountItem.deleted_at.set(epoch),
        AccountItem.retention_rule.set(retention.Rule.ACCOUNT_RECORD.value),
        AccountItem.expires_at.set(epoch),
        AccountItem.gsi2pk.remove(),
        AccountItem.gsi2sk.remove(),
    ]


def _account_as_read(account: AccountItem):
    return (AccountItem.state == account.state) & (AccountItem.next_due_at == account.next_due_at) & deletion.NOT_HELD


def _delete_account(account: AccountItem) -> None:
    from rightsdesk.store.items.accounts import AccountSubjectItem

    deletion.delete_marked(AccountItem(account.pk, account.sk), deletion.Cause.ERASURE)
    if account.email_hash:
        AccountSubjectItem(
            AccountSubjectItem.key(account.email_hash), f"{AccountSubjectItem.SK_PREFIX}{account.account_id}"
        ).delete()
