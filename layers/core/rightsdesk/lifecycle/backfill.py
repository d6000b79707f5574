"""A one-off migration for deployments that recorded consents before the lifecycle existed:
consents granted then are not on the lifecycle's due index, so they would never expire.

`file_granted_consents` files each such consent at its expiry (five years after its grant), as a
grant does now (rightsdesk.audience.consents). It is the one place the lifecycle reads the table
without an index: a Scan, filtered to granted consents not yet filed, run once by the operator
(`rightsdesk lifecycle file-consents`), never by a function. Running it again files nothing twice:
each write is conditional on the consent being granted and unfiled.
"""

from __future__ import annotations

from collections.abc import Callable

from pynamodb.exceptions import UpdateError

from rightsdesk.kernel import retention
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items.audience import ConsentItem, ContactItem

GRANTED = "granted"


def file_granted_consents(*, dry_run: bool = False, progress: Callable[[int], None] | None = None) -> dict:
    """Returns counts: `found` (granted, unfiled), `filed` (written now; 0 in a dry run),
    `changed` (withdrawn or filed meanwhile), `undated` (no grant time: left for the operator)."""
    counts = {"found": 0, "filed": 0, "changed": 0, "undated": 0}
    unfiled = (
        ConsentItem.pk.startswith(ContactItem.key(""))
        & ConsentItem.sk.startswith(ConsentItem.SK_PREFIX)
        & (ConsentItem.state == GRANTED)
        & ConsentItem.gsi2pk.does_not_exist()
    )
    for consent in ConsentItem.scan(unfiled):
        counts["found"] += 1
        if progress:
            progress(1)
        if consent.granted_at is None:
            counts["undated"] += 1
            continue
        if dry_run:
            continue
        due = retention.expires_at(retention.Rule.CONSENT_RECORD, consent.granted_at)
        keys = retention.lifecycle_index_keys(due, consent.pk, consent.sk)
        try:
            consent.update(
                actions=[ConsentItem.gsi2pk.set(keys["gsi2pk"]), ConsentItem.gsi2sk.set(keys["gsi2sk"])],
                condition=(ConsentItem.state == GRANTED) & ConsentItem.gsi2pk.does_not_exist(),
            )
        except UpdateError as error:
            if not conditional_failure(error):
                raise
            counts["changed"] += 1
            continue
        counts["filed"] += 1
    return counts
