"""The controller registry: who receives requests for which site, and how.

Every change is one DynamoDB transaction: the controller, the pointers that find it (site keys,
domains, the API key's hash) and an audit event, each written on a condition, so two operators
racing on the same controller cannot both win and nothing is ever half-registered. Reading a
controller (by site or id, its state, where its deliveries go) is rightsdesk.routing.controller_lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from rightsdesk.kernel import clock, identifiers
from rightsdesk.kernel.delivery_mode import DELIVERY_MODES, DeliveryMode
from rightsdesk.kernel.errors import Conflict, InvalidInput, TooManyRotations
from rightsdesk.platform import credentials, hashing, ssrf
from rightsdesk.platform.config import SUPPORTED_LOCALES, settings
from rightsdesk.routing.controller_lookup import (
    ACTIVE,
    DISABLED,
    REMOVED,
    delivery_route,
    forget_recent,
    get_controller,
    require_controller,
    state_of,
    tenant_of,
)
from rightsdesk.store import audit
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.controllers import ApiKeyItem, ControllerItem, ReplacedSecret, SiteItem
from rightsdesk.store.items.table import transaction

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import Actor

MAX_STATE_REASON = 500
# After a rotation the replaced secret keeps signing this long, so receivers can switch without a
# gap, however many rotations follow (a lost answer and a retry rotate twice).
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
# Replaced secrets that may sign at once; one rotation more within their 24 h is refused (429) rather
# than dropping a secret a receiver may still hold. Bounds the signature header and KMS calls.
MAX_SIGNING_REPLACED_SECRETS = 10
SLA_DAYS_RANGE = (1, 31)
PURGE_AFTER_RANGE = (60, 30 * 24 * 3600)
MAX_DOMAINS = 20

_SITE_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


@dataclass(frozen=True)
class NewController:
    controller: ControllerItem
    api_key: str  # shown once; only its keyed hash is stored
    webhook_secret: str | None = None  # shown once; stored KMS-encrypted


def authenticate(api_key: str | None) -> ControllerItem | None:
    """The controller this API key belongs to, or None for a malformed, unknown or rotated-out key,
    or the key of a disabled or removed controller."""
    if not credentials.well_formed(api_key):
        return None
    assert api_key is not None
    try:
        pointer = ApiKeyItem.get(ApiKeyItem.key(credentials.api_key_hash(api_key)), ApiKeyItem.SK, consistent_read=True)
    except ApiKeyItem.DoesNotExist:
        return None
    controller = get_controller(pointer.controller_id)
    # The pointer and the controller change in one transaction; comparing both costs nothing.
    if controller is None or not credentials.key_matches(api_key, controller.api_key_hash):
        return None
    return controller if state_of(controller) == ACTIVE else None


def signing_replaced_secrets(controller: ControllerItem, at: datetime | None = None) -> list[ReplacedSecret]:
    """The replaced secrets that still sign at `at`, most recently replaced first."""
    at = at or clock.now()
    still = [secret for secret in controller.replaced_webhook_secrets or [] if secret.valid_until > at]
    return sorted(still, key=lambda secret: secret.valid_until, reverse=True)


def webhook_secrets(controller: ControllerItem, at: datetime | None = None) -> list[str]:
    """Secrets to sign with, newest first: the current one and every secret replaced less than 24 h ago."""
    sealed = [controller.webhook_secret_sealed] if controller.webhook_secret_sealed else []
    sealed += [secret.sealed for secret in signing_replaced_secrets(controller, at)]
    return [credentials.unseal_webhook_secret(value, controller.controller_id) for value in sealed]


# ------------------------------------------------------------------ validation


def parse_duration(text: str) -> int:
    """Seconds in an ISO-8601 duration of days, hours, minutes, seconds: P1D, PT1H, PT30M, P1DT12H."""
    match = _DURATION.fullmatch(text.strip().upper()) if text else None
    if not match or not any(match.groups()) or text.strip().upper().endswith("T"):
        raise InvalidInput(
            "use an ISO-8601 duration such as PT1H, PT30M or P1D", fields={"purge_after": "invalid_duration"}
        )
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "") if (days or time) else "PT0S"


def _check_delivery(delivery: str, webhook_url: str | None, allow_loopback_http: bool | None) -> None:
    if delivery not in DELIVERY_MODES:
        raise InvalidInput(
            f"delivery must be one of {', '.join(DELIVERY_MODES)}", fields={"delivery": "invalid_choice"}
        )
    if delivery == DeliveryMode.WEBHOOK:
        if not webhook_url:
            raise InvalidInput("webhook delivery needs a webhook URL", fields={"webhook_url": "required"})
        allow = settings().allow_http_webhooks if allow_loopback_http is None else allow_loopback_http
        ssrf.check_url(webhook_url, allow_loopback_http=allow)
    elif webhook_url:
        raise InvalidInput("a webhook URL only goes with webhook delivery", fields={"webhook_url": "not_allowed"})


def _check_profile(
    *,
    name: str,
    site_key: str,
    domains: list[str],
    contact_email: str,
    locale: str,
    sla_days: int | None,
    purge_after_seconds: int | None,
) -> None:
    from rightsdesk.kernel import free_text  # pydantic: loaded only by who registers (the CLI, the API)

    problems: dict[str, str] = {}
    if not name.strip() or len(name) > 200:
        problems["name"] = "invalid_input"
    elif not free_text.one_line_ok(name):  # shown in every mail to the contact
        problems["name"] = free_text.INVALID_CHARACTERS
    if not _SITE_KEY.fullmatch(site_key):
        problems["site"] = "invalid_format"
    if len(domains) > MAX_DOMAINS or not all(_DOMAIN.fullmatch(domain) for domain in domains):
        problems["domain"] = "invalid_format"
    if not identifiers.is_valid_email(contact_email):
        problems["contact"] = "invalid_email"
    elif not free_text.one_line_ok(contact_email):
        problems["contact"] = free_text.INVALID_CHARACTERS
    if locale not in SUPPORTED_LOCALES:
        problems["locale"] = "invalid_choice"
    if sla_days is not None and not SLA_DAYS_RANGE[0] <= sla_days <= SLA_DAYS_RANGE[1]:
        problems["sla_days"] = "out_of_range"
    if purge_after_seconds is not None and not PURGE_AFTER_RANGE[0] <= purge_after_seconds <= PURGE_AFTER_RANGE[1]:
        problems["purge_after"] = "out_of_range"
    if problems:
        raise InvalidInput("some controller settings are not valid", fields=problems)


# ------------------------------------------------------------------ changes


def _transact(writes, conflict_message: str, controller: ControllerItem | None = None) -> None:
    """Write in one transaction; `controller`, the one changed, is read fresh next time here."""
    try:
        with transaction() as tx:
            writes(tx)
    except TransactWriteError as error:
        # A failed condition is a conflict; throttling or an outage is not, and must not say "taken".
        if any(reason and reason.code == "ConditionalCheckFailed" for reason in error.cancellation_reasons):
            raise Conflict(conflict_message) from error
        raise
    finally:
        if controller is not None:
            forget_recent(controller)


def history(controller_id: str, limit: int = 20) -> list[AuditEvent]:
    """The controller's latest audit events, newest first: registration, key and secret rotations,
    delivery changes, webhook tests, an endpoint disabled by a 410, policy.updated outcomes."""
    require_controller(controller_id)
    return audit.latest(ControllerItem.key(controller_id), limit)


def _audit(
    tx: TransactWrite, controller_id: str, action: str, actor: Actor, at: datetime, cause: str | None = None
) -> None:
    event = audit.event(ControllerItem.key(controller_id), action=action, actor=actor, at=at, cause=cause)
    tx.save(event, condition=AuditEvent.sk.does_not_exist())


def _not_removed(controller: ControllerItem) -> ControllerItem:
    if state_of(controller) == REMOVED:
        raise Conflict(f"controller {controller.controller_id} was removed", code="controller_removed")
    return controller


def _unchanged(controller: ControllerItem):
    """The condition that nobody changed `controller` since it was read."""
    if controller.updated_at is None:
        return ControllerItem.pk.exists() & ControllerItem.updated_at.does_not_exist()
    return ControllerItem.updated_at == controller.updated_at


def register(
    *,
    name: str,
    site_key: str,
    contact_email: str,
    delivery: str,
    domains: tuple[str, ...] = (),
    webhook_url: str | None = None,
    locale: str = "en",
    sla_days: int | None = None,
    purge_after_seconds: int | None = None,
    controller_id: str | None = None,
    actor: Actor = "operator",
    allow_loopback_http: bool | None = None,
    now: datetime | None = None,
) -> NewController:
    """Create a controller and claim its site key and domains; fails if any is taken."""
    site_key = identifiers.normalize_site_key(site_key)
    domain_list = sorted({identifiers.normalize_site_key(d).rstrip(".") for d in domains if d.strip()} - {site_key})
    contact_email = identifiers.normalize_email(contact_email)
    _check_delivery(delivery, webhook_url, allow_loopback_http)
    _check_profile(
        name=name,
        site_key=site_key,
        domains=domain_list,
        contact_email=contact_email,
        locale=locale,
        sla_days=sla_days,
        purge_after_seconds=purge_after_seconds,
    )
    now = now or clock.now()
    controller_id = controller_id or hashing.new_id("ctl")
    api_key = credentials.new_api_key()
    key_hash = credentials.api_key_hash(api_key)
    secret = credentials.new_webhook_secret() if delivery == DeliveryMode.WEBHOOK else None
    controller = ControllerItem(
        ControllerItem.key(controller_id),
        ControllerItem.SK,
        controller_id=controller_id,
        name=name.strip(),
        site_key=site_key,
        domains=domain_list,
        contact_email=contact_email,
        locale=locale,
        delivery=delivery,
        webhook_url=webhook_url,
        sla_days=sla_days,
        purge_after_seconds=purge_after_seconds,
        api_key_hash=key_hash,
        webhook_secret_sealed=credentials.seal_webhook_secret(secret, controller_id) if secret else None,
        created_at=now,
        updated_at=now,
        gsi1pk=ControllerItem.LISTING_PARTITION,
        gsi1sk=controller_id,
    )

    def writes(tx: TransactWrite) -> None:
        tx.save(controller, condition=ControllerItem.pk.does_not_exist())
        for claim in [site_key, *domain_list]:
            pointer = SiteItem(SiteItem.key(claim), SiteItem.SK, controller_id=controller_id)
            tx.save(pointer, condition=SiteItem.pk.does_not_exist())
        pointer = ApiKeyItem(ApiKeyItem.key(key_hash), ApiKeyItem.SK, controller_id=controller_id)
        tx.save(pointer, condition=ApiKeyItem.pk.does_not_exist())
        _audit(tx, controller_id, "controller_registered", actor, now, cause=f"delivery_{delivery}")

    _transact(writes, "that controller id, site key or domain is already registered")
    return NewController(controller=controller, api_key=api_key, webhook_secret=secret)


def rotate_api_key(controller_id: str, *, actor: Actor = "operator") -> str:
    """Issue a new API key; the old one stops working in the same write."""
    controller = _not_removed(require_controller(controller_id))
    now = clock.now()
    api_key = credentials.new_api_key()
    new_hash = credentials.api_key_hash(api_key)

    def writes(tx: TransactWrite) -> None:
        tx.update(
            controller,
            actions=[ControllerItem.api_key_hash.set(new_hash), ControllerItem.updated_at.set(now)],
            condition=_unchanged(controller),
        )
        if controller.api_key_hash:
            tx.delete(ApiKeyItem(ApiKeyItem.key(controller.api_key_hash), ApiKeyItem.SK))
        tx.save(
            ApiKeyItem(ApiKeyItem.key(new_hash), ApiKeyItem.SK, controller_id=controller_id),
            condition=ApiKeyItem.pk.does_not_exist(),
        )
        _audit(tx, controller_id, "api_key_rotated", actor, now)

    _transact(writes, "the controller changed meanwhile; try again", controller)
    return api_key


def set_delivery(
    controller_id: str,
    delivery: str,
    webhook_url: str | None = None,
    *,
    actor: Actor = "operator",
    allow_loopback_http: bool | None = None,
) -> tuple[ControllerItem, str | None]:
    """Change how requests reach the controller. Returns the controller and a webhook secret when
    one was issued (switching to webhook delivery); a URL change keeps the current secret."""
    _check_delivery(delivery, webhook_url, allow_loopback_http)
    controller = _not_removed(require_controller(controller_id))
    now = clock.now()
    secret = None
    actions = [
        ControllerItem.delivery.set(delivery),
        ControllerItem.updated_at.set(now),
        # a delivery the operator sets is enabled: a disabled endpoint's state goes with it
        ControllerItem.webhook_disabled_reason.remove(),
        ControllerItem.webhook_disabled_at.remove(),
    ]
    if delivery == DeliveryMode.WEBHOOK:
        actions.append(ControllerItem.webhook_url.set(webhook_url))
        if not controller.webhook_secret_sealed:
            secret = credentials.new_webhook_secret()
            actions.append(
                ControllerItem.webhook_secret_sealed.set(credentials.seal_webhook_secret(secret, controller_id))
            )
    else:
        # No endpoint, no secret: a later switch back to webhooks issues a fresh one.
        actions += [
            ControllerItem.webhook_url.remove(),
            ControllerItem.webhook_secret_sealed.remove(),
            ControllerItem.replaced_webhook_secrets.remove(),
        ]

    def writes(tx: TransactWrite) -> None:
        tx.update(controller, actions=actions, condition=_unchanged(controller))
        _audit(tx, controller_id, "delivery_changed", actor, now, cause=f"delivery_{delivery}")

    _transact(writes, "the controller changed meanwhile; try again", controller)
    controller.refresh(consistent_read=True)
    return controller, secret


# A tenant id is used in the platform's store keys and S3 prefixes: a short word, never a path.
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def set_tenant(controller_id: str, tenant_id: str | None, *, actor: Actor = "operator") -> ControllerItem:
    """Set (or, with None, clear back to the controller id) the controller's tenant id. Refused:
    a malformed id, another controller's id, or a tenant id another controller holds (Conflict)."""
    from rightsdesk.store.items.controllers import TenantClaimItem

    if tenant_id is not None and (
        not TENANT_ID.fullmatch(tenant_id) or (tenant_id.startswith("ctl_") and tenant_id != controller_id)
    ):
        raise InvalidInput(
            "a tenant id is 1-128 letters, digits and . _ : - and never another controller's id",
            fields={"tenant_id": "invalid_format"},
        )
    controller = _not_removed(require_controller(controller_id))
    if tenant_id == controller.tenant_id:
        return controller
    now = clock.now()

    def writes(tx: TransactWrite) -> None:
        actions = [ControllerItem.updated_at.set(now)]
        actions.append(ControllerItem.tenant_id.set(tenant_id) if tenant_id else ControllerItem.tenant_id.remove())
        tx.update(controller, actions=actions, condition=_unchanged(controller))
        if controller.tenant_id:
            tx.delete(TenantClaimItem(TenantClaimItem.key(controller.tenant_id), TenantClaimItem.SK))
        if tenant_id and tenant_id != controller_id:
            claim = TenantClaimItem(TenantClaimItem.key(tenant_id), TenantClaimItem.SK, controller_id=controller_id)
            tx.save(claim, condition=TenantClaimItem.pk.does_not_exist())
        _audit(tx, controller_id, "tenant_changed", actor, now)

    _transact(
        writes, f"tenant {tenant_id} belongs to another controller, or the controller changed meanwhile", controller
    )
    controller.refresh(consistent_read=True)
    return controller


def rotate_webhook_secret(controller_id: str, *, actor: Actor) -> tuple[str, datetime]:
    """A new signing secret; the current one, like every one replaced before it, keeps signing for
    24 h. Returns (secret, the replaced one's expiry). Refused (TooManyRotations) while
    MAX_SIGNING_REPLACED_SECRETS replaced secrets still sign."""
    controller = require_controller(controller_id)
    if controller.delivery != DeliveryMode.WEBHOOK or not controller.webhook_secret_sealed:
        raise Conflict("this controller does not receive webhooks", code="not_webhook")
    now = clock.now()
    still_signing = signing_replaced_secrets(controller, now)
    if len(still_signing) >= MAX_SIGNING_REPLACED_SECRETS:
        first_free = clock.isoformat(min(secret.valid_until for secret in still_signing))
        raise TooManyRotations(
            f"{MAX_SIGNING_REPLACED_SECRETS} replaced secrets still sign; rotate again after {first_free}"
        )
    secret = credentials.new_webhook_secret()
    expires = now + PREVIOUS_SECRET_GRACE
    replaced = [*reversed(still_signing), ReplacedSecret(sealed=controller.webhook_secret_sealed, valid_until=expires)]

    def writes(tx: TransactWrite) -> None:
        tx.update(
            controller,
            actions=[
                # Expired entries go with the write; the list holds only secrets that still sign.
                ControllerItem.replaced_webhook_secrets.set(replaced),
                ControllerItem.webhook_secret_sealed.set(credentials.seal_webhook_secret(secret, controller_id)),
                ControllerItem.updated_at.set(now),
            ],
            condition=_unchanged(controller),
        )
        _audit(tx, controller_id, "webhook_secret_rotated", actor, now)

    _transact(writes, "the controller changed meanwhile; try again", controller)
    return secret, expires


def _check_reason(reason: str | None) -> str | None:
    reason = (reason or "").strip() or None
    if reason and (len(reason) > MAX_STATE_REASON or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in reason)):
        raise InvalidInput("the reason must be one line of at most 500 characters", fields={"reason": "invalid_input"})
    return reason


def _change_state(
    controller: ControllerItem,
    state: str,
    action: str,
    *,
    reason: str | None,
    actor: Actor,
    extra_actions=(),
    extra_writes=None,
) -> ControllerItem:
    now = clock.now()
    actions = [
        ControllerItem.state.set(state),
        ControllerItem.state_changed_at.set(now),
        ControllerItem.updated_at.set(now),
        ControllerItem.state_reason.set(reason) if reason else ControllerItem.state_reason.remove(),
        *extra_actions,
    ]

    def writes(tx: TransactWrite) -> None:
        tx.update(controller, actions=actions, condition=_unchanged(controller))
        if extra_writes:
            extra_writes(tx)
        _audit(tx, controller.controller_id, action, actor, now, cause=reason)

    _transact(writes, "the controller changed meanwhile; try again", controller)
    controller.refresh(consistent_read=True)
    return controller


def disable(controller_id: str, *, reason: str | None = None, actor: Actor = "operator") -> ControllerItem:
    """Stop the controller's API key and new submissions for its sites; its open requests stay due
    and every delivery goes to its privacy contact by email until it is enabled again."""
    reason = _check_reason(reason)
    controller = require_controller(controller_id)
    if state_of(controller) != ACTIVE:
        raise Conflict(
            f"controller {controller_id} is {state_of(controller)}", code=f"controller_{state_of(controller)}"
        )
    return _change_state(controller, DISABLED, "controller_disabled", reason=reason, actor=actor)


def enable(controller_id: str, *, reason: str | None = None, actor: Actor = "operator") -> ControllerItem:
    """Undo `disable`: the same API key works again and deliveries take the controller's own route."""
    reason = _check_reason(reason)
    controller = require_controller(controller_id)
    state = state_of(controller)
    if state == REMOVED:
        raise Conflict(f"controller {controller_id} was removed; register it again", code="controller_removed")
    if state == ACTIVE:
        raise Conflict(f"controller {controller_id} is already active", code="controller_active")
    return _change_state(controller, ACTIVE, "controller_enabled", reason=reason, actor=actor)


def remove(
    controller_id: str, *, reason: str | None = None, release_sites: bool = False, actor: Actor = "operator"
) -> ControllerItem:
    """Offboard the controller for good: its API key and webhook secrets are deleted, nothing more
    is delivered to it, and the operator answers its open requests (`rightsdesk requests answer`).
    The record, its audit trail and its requests stay for their retention time. Its site keys and
    domains stay reserved (the form answers `site_unavailable`) unless `release_sites`, after which
    they are unknown and another controller may claim them."""
    reason = _check_reason(reason)
    controller = require_controller(controller_id)
    if state_of(controller) == REMOVED:
        raise Conflict(f"controller {controller_id} was removed already", code="controller_removed")
    if controller.delivery == DeliveryMode.INTERNAL:
        raise Conflict("the operator's own controller cannot be removed", code="internal_controller")
    cleared = [
        ControllerItem.api_key_hash.remove(),
        ControllerItem.webhook_secret_sealed.remove(),
        ControllerItem.replaced_webhook_secrets.remove(),
    ]
    sites = [controller.site_key, *(controller.domains or [])] if release_sites else []

    def writes(tx: TransactWrite) -> None:
        if controller.api_key_hash:
            tx.delete(ApiKeyItem(ApiKeyItem.key(controller.api_key_hash), ApiKeyItem.SK))
        for site in sites:
            tx.delete(SiteItem(SiteItem.key(site), SiteItem.SK), condition=SiteItem.controller_id == controller_id)

    return _change_state(
        controller,
        REMOVED,
        "controller_removed",
        reason=reason,
        actor=actor,
        extra_actions=cleared,
        extra_writes=writes,
    )


# ------------------------------------------------------------------ views


def describe(controller: ControllerItem) -> dict:
    """Everything about a controller an operator may see: settings, never a key or a secret."""
    replaced = signing_replaced_secrets(controller)
    return {
        "controller_id": controller.controller_id,
        "name": controller.name,
        "site_key": controller.site_key,
        "domains": list(controller.domains or []),
        "contact_email": controller.contact_email,
        "locale": controller.locale,
        "delivery": controller.delivery,
        "tenant_id": tenant_of(controller),
        "webhook_url": controller.webhook_url,
        "webhook_secret": "set" if controller.webhook_secret_sealed else None,
        # the last replaced secret signs longest; `replaced_webhook_secrets_signing` says how many do
        "previous_webhook_secret_valid_until": clock.isoformat(replaced[0].valid_until) if replaced else None,
        "replaced_webhook_secrets_signing": len(replaced),
        "sla_days": int(controller.sla_days) if controller.sla_days is not None else None,
        "purge_after": format_duration(controller.purge_after_seconds),
        "created_at": clock.isoformat(controller.created_at),
        "updated_at": clock.isoformat(controller.updated_at) if controller.updated_at else None,
        "state": state_of(controller),
        "state_reason": controller.state_reason,
        "state_changed_at": clock.isoformat(controller.state_changed_at) if controller.state_changed_at else None,
        "delivery_now": delivery_route(controller),
        "webhook_disabled_reason": controller.webhook_disabled_reason,
        "webhook_disabled_at": clock.isoformat(controller.webhook_disabled_at)
        if controller.webhook_disabled_at
        else None,
    }
