"""The registry's items: controllers, their sites and API keys."""

from __future__ import annotations

from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)

from rightsdesk.kernel import identifiers
from rightsdesk.store.items.table import ControllerIndex, _Item, _TableMeta


class ReplacedSecret(MapAttribute):
    """A webhook secret a rotation replaced (KMS ciphertext) and until when it still signs."""

    sealed = UnicodeAttribute()
    valid_until = UTCDateTimeAttribute()


class ControllerItem(_Item):
    class Meta(_TableMeta):
        pass

    SK = "CONTROLLER"
    LISTING_PARTITION = "CONTROLLERS"  # the GSI1 partition every controller sits in (gsi1pk)

    controller_id = UnicodeAttribute()
    name = UnicodeAttribute()
    site_key = UnicodeAttribute()
    domains = ListAttribute(of=UnicodeAttribute, null=True)
    contact_email = UnicodeAttribute()
    locale = UnicodeAttribute(default="en")
    delivery = UnicodeAttribute()  # webhook | email | pull | internal
    # The tenant the platform's stores know this controller by, for executions it asks of rightsdesk as
    # its processor (rightsdesk.routing.controller_lookup.tenant_of); unset: its controller id.
    tenant_id = UnicodeAttribute(null=True)
    webhook_url = UnicodeAttribute(null=True)
    sla_days = NumberAttribute(null=True)
    purge_after_seconds = NumberAttribute(null=True)
    api_key_hash = UnicodeAttribute(null=True)
    # KMS ciphertext (rightsdesk.platform.sealing); every replaced secret still signs until its valid_until
    webhook_secret_sealed = UnicodeAttribute(null=True)
    replaced_webhook_secrets = ListAttribute(of=ReplacedSecret, null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute(null=True)
    # offboarding (rightsdesk.routing.registry): absent = active | disabled | removed, with the operator's note
    state = UnicodeAttribute(null=True)
    state_reason = UnicodeAttribute(null=True)
    state_changed_at = UTCDateTimeAttribute(null=True)
    # The webhook endpoint disabled while the controller stays active (rightsdesk.routing.delivery_log):
    # why (`gone_410`) and since when; deliveries go to the privacy contact by email meanwhile.
    webhook_disabled_reason = UnicodeAttribute(null=True)
    webhook_disabled_at = UTCDateTimeAttribute(null=True)
    # every controller sits in one GSI1 partition, so listing them never scans the table
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    listing = ControllerIndex()

    @staticmethod
    def key(controller_id: str) -> str:
        return f"CTRL#{controller_id}"


class SiteItem(_Item):
    """A site key or domain a subject may type into the form, pointing at its controller."""

    class Meta(_TableMeta):
        pass

    SK = "SITE"

    controller_id = UnicodeAttribute()

    @staticmethod
    def key(site: str) -> str:
        return f"SITE#{identifiers.normalize_site_key(site)}"


class TenantClaimItem(_Item):
    """TENANT#<tenant id> / TENANT: which controller a tenant id the operator set belongs to, so two
    controllers can never be given one tenant (written in the same transaction as the controller)."""

    class Meta(_TableMeta):
        pass

    SK = "TENANT"

    controller_id = UnicodeAttribute()

    @staticmethod
    def key(tenant_id: str) -> str:
        return f"TENANT#{tenant_id}"


class ApiKeyItem(_Item):
    """Finds a controller by the keyed hash of its API key; replaced in the same write as the key."""

    class Meta(_TableMeta):
        pass

    SK = "APIKEY"

    controller_id = UnicodeAttribute()

    @staticmethod
    def key(api_key_hash: str) -> str:
        return f"APIKEY#{api_key_hash}"
