"""Who a controller is, read: the controller behind a site, by id, fresh or from the container's
recent reads, and what its state lets it do. Read-only and light (no credentials, no SSRF guard, no
sealing), so what only looks controllers up (the intake, the controller API, the dispatcher) does not
load what changes them (rightsdesk.routing.registry).
"""

from __future__ import annotations

from rightsdesk.kernel import identifiers
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import NotFound
from rightsdesk.platform.container_cache import ContainerCache
from rightsdesk.store.items.controllers import ControllerItem, SiteItem

# Offboarding. Disabled: no API key, no new submissions, every delivery by email to the privacy
# contact. Removed: also no deliveries and no credentials; the operator answers its open requests.
ACTIVE, DISABLED, REMOVED = "active", "disabled", "removed"

# How long a container may answer from a controller record it read (and from which controller a
# site belongs to) where a stale answer harms nobody: a verification's deadline setting, a
# submission's site. What security depends on reads fresh: the authorizer's key check and the
# dispatcher's delivery (docs/decisions.md, "Fewer AWS calls").
RECENT_SECONDS = 60
_recent_controllers: ContainerCache[ControllerItem] = ContainerCache("controllers", max_age_seconds=RECENT_SECONDS)
_recent_sites: ContainerCache[str] = ContainerCache("sites", max_age_seconds=RECENT_SECONDS)


def resolve_site(site: str, *, recent: bool = False) -> ControllerItem | None:
    """The controller behind a site key or domain, or None. Case and surrounding space don't matter.
    With `recent`, the pointer and the controller may be up to RECENT_SECONDS old (a submission:
    a controller disabled a moment ago may still take it, and its delivery then reads fresh)."""
    site = identifiers.normalize_site_key(site)
    if not site:
        return None
    controller_id = _recent_sites.get(site, lambda: _site_owner(site)) if recent else _site_owner(site)
    if controller_id is None:
        return None
    return recent_controller(controller_id) if recent else get_controller(controller_id)


def _site_owner(site: str) -> str | None:
    try:
        return SiteItem.get(SiteItem.key(site), SiteItem.SK, consistent_read=False).controller_id
    except SiteItem.DoesNotExist:
        return None


def get_controller(controller_id: str) -> ControllerItem | None:
    """The controller as stored now: for every check security depends on (is it enabled, its key,
    its endpoint and secrets)."""
    try:
        return ControllerItem.get(ControllerItem.key(controller_id), ControllerItem.SK)
    except ControllerItem.DoesNotExist:
        return None


def recent_controller(controller_id: str) -> ControllerItem | None:
    """The controller as read by this container at most RECENT_SECONDS ago: for settings a
    moment's staleness cannot abuse (its deadline, its name in a page). Never for a key, an
    endpoint, a secret or whether it is enabled where that decides who gets data. The item is
    shared with the next caller: read it, never change it."""
    return _recent_controllers.get(controller_id, lambda: get_controller(controller_id))


def forget_recent(controller: ControllerItem) -> None:
    """After this process changed `controller`: its next recent read is fresh."""
    _recent_controllers.forget(controller.controller_id)
    for site in [controller.site_key, *(controller.domains or [])]:
        if site:
            _recent_sites.forget(site)


def require_controller(controller_id: str) -> ControllerItem:
    controller = get_controller(controller_id)
    if controller is None:
        raise NotFound(f"no controller {controller_id}")
    return controller


def state_of(controller: ControllerItem) -> str:
    return controller.state or ACTIVE


def accepts_submissions(controller: ControllerItem) -> bool:
    """New requests for its sites are taken only while the controller is active."""
    return state_of(controller) == ACTIVE


def delivery_route(controller: ControllerItem) -> str:
    """How requests and notices reach the controller now: its own choice while active; by email to
    its privacy contact while disabled (its API key and endpoint are not trusted, its deadlines run
    on); `internal` once removed (the operator answers them)."""
    state = state_of(controller)
    if state == REMOVED:
        return DeliveryMode.INTERNAL
    if state == DISABLED and controller.delivery != DeliveryMode.INTERNAL:
        return DeliveryMode.EMAIL
    if controller.delivery == DeliveryMode.WEBHOOK and controller.webhook_disabled_reason:
        return DeliveryMode.EMAIL  # its endpoint answered 410: by email until it is enabled again
    return controller.delivery


def tenant_of(controller: ControllerItem) -> str:
    """The tenant the platform's stores know the controller by, for executions it asks of rightsdesk
    as its processor: what the operator set (rightsdesk.routing.registry.set_tenant), else its
    controller id."""
    return controller.tenant_id or controller.controller_id
