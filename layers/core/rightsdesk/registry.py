"""The controller registry: who receives requests for which site, and how."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from rightsdesk import clock, hashing
from rightsdesk.errors import Conflict
from rightsdesk.models import ControllerItem, SiteItem, _region

DELIVERY_MODES = ("webhook", "email", "pull", "internal")
CONTROLLERS_PARTITION = "CONTROLLERS"


@dataclass(frozen=True)
class NewController:
    controller: ControllerItem
    api_key: str  # shown once; only its keyed hash is stored


def resolve_site(site: str) -> ControllerItem | None:
    """The controller behind a site key or domain, or None. Case and surrounding space don't matter."""
    site = site.strip().lower()
    if not site:
        return None
    try:
        pointer = SiteItem.get(SiteItem.key(site), SiteItem.SK, consistent_read=False)
    except SiteItem.DoesNotExist:
        return None
    return get_controller(pointer.controller_id)


def get_controller(controller_id: str) -> ControllerItem | None:
    try:
        return ControllerItem.get(ControllerItem.key(controller_id), ControllerItem.SK)
    except ControllerItem.DoesNotExist:
        return None


def list_controllers() -> list[ControllerItem]:
    return list(ControllerItem.listing.query(CONTROLLERS_PARTITION))


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
    now: datetime | None = None,
) -> NewController:
    """Create a controller and claim its site key and domains; fails if any is taken."""
    if delivery not in DELIVERY_MODES:
        raise ValueError(f"delivery must be one of {', '.join(DELIVERY_MODES)}")
    now = now or clock.now()
    controller_id = controller_id or hashing.new_id("ctl")
    api_key = hashing.new_token("rdk_")
    controller = ControllerItem(
        ControllerItem.key(controller_id),
        ControllerItem.SK,
        controller_id=controller_id,
        name=name,
        site_key=site_key.strip().lower(),
        domains=[d.strip().lower() for d in domains],
        contact_email=contact_email,
        locale=locale,
        delivery=delivery,
        webhook_url=webhook_url,
        sla_days=sla_days,
        purge_after_seconds=purge_after_seconds,
        api_key_hash=hashing.keyed_hash("api_key", api_key),
        created_at=now,
        gsi1pk=CONTROLLERS_PARTITION,
        gsi1sk=controller_id,
    )
    claims = {controller.site_key, *controller.domains}
    try:
        with TransactWrite(connection=Connection(region=_region())) as tx:
            tx.save(controller, condition=ControllerItem.pk.does_not_exist())
            for claim in sorted(claims):
                pointer = SiteItem(SiteItem.key(claim), SiteItem.SK, controller_id=controller_id)
                tx.save(pointer, condition=SiteItem.pk.does_not_exist())
    except TransactWriteError as error:
        raise Conflict("that controller id, site key or domain is already registered") from error
    return NewController(controller=controller, api_key=api_key)
