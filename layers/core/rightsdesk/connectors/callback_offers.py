"""The offer of a one-time callback URL, made by an HTTP connector's step when it asks the product
to erase or export (rightsdesk.connectors.callbacks has the whole contract and the route's side).
This half is what the worker's step needs: store the offer before the product is asked, check
whether the product already called back, withdraw it when the product answered at once. It knows
nothing of runs, so the steps (rightsdesk.connectors.steps) and the route's side
(rightsdesk.connectors.callbacks, which records into runs) import it without a loop.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from rightsdesk.connectors import base
from rightsdesk.kernel import clock, retention
from rightsdesk.platform import config, hashing
from rightsdesk.store.items.connector_callbacks import CALLBACK_DUE_INDEX_KEY, ConnectorCallbackItem

PATH = "/v1/connectors/callback/"
TOKEN_PREFIX = "cb_"
HASH_PURPOSE = "connector_callback"
OPEN, USED, EXPIRED = "open", "used", "expired"
OFFERED_ACTIONS = frozenset({"erase", "export"})


class Offer:
    """The callback a step of an HTTP connector may offer, for one attempt of one run's step.
    `open` stores it before the product is asked (so a product that calls back before its 202 has
    arrived is not refused); `withdraw` removes it when the product answered at once or failed."""

    def __init__(
        self, *, request_id: str, execution_id: str, run: int, connector_id: str, task_token: str, attempt: int
    ):
        self.request_id = request_id
        self.execution_id = execution_id
        self.run = run
        self.connector_id = connector_id
        self.task_token = task_token
        self.attempt = attempt
        self.callback_id: str | None = None

    def open(self, action: str, found: base.Found) -> str | None:
        """Store the offer and answer its URL (None: no public base URL, nothing to offer)."""
        base_url = config.settings().public_base_url
        if action not in OFFERED_ACTIONS or not base_url:
            return None
        callback_id = secrets.token_hex(10)
        secret = secrets.token_urlsafe(32)
        now = clock.now()
        deadline = now + timedelta(seconds=config.connector_step_timeout_seconds())
        partial = {
            "found": found.count,
            "touched": found.key_hashes(),
            "identities": {kind: base.identity_hash(kind, value) for kind, value in sorted(found.identities.items())},
            "started_at": clock.isoformat(now),
        }
        ConnectorCallbackItem(
            ConnectorCallbackItem.key(callback_id),
            ConnectorCallbackItem.SK,
            callback_id=callback_id,
            request_id=self.request_id,
            execution_id=self.execution_id,
            run=self.run,
            connector_id=self.connector_id,
            attempt=self.attempt,
            action=action,
            secret_hash=hashing.keyed_hash(HASH_PURPOSE, secret),
            task_token=self.task_token,
            state=OPEN,
            offered_at=now,
            deadline=deadline,
            partial=json.dumps(partial, sort_keys=True, separators=(",", ":")),
            gsi2pk=CALLBACK_DUE_INDEX_KEY,
            gsi2sk=f"{clock.isoformat(deadline)}#{callback_id}",
            expires_at=retention.expires_at(retention.Rule.CONNECTOR_CALLBACK, deadline),
        ).save(condition=ConnectorCallbackItem.pk.does_not_exist())
        self.callback_id = callback_id
        return f"{base_url}{PATH}{TOKEN_PREFIX}{callback_id}_{secret}"

    def still_open(self) -> bool:
        """Whether the product has not called back yet (it may have, before its 202 reached us)."""
        if self.callback_id is None:
            return False
        try:
            item = ConnectorCallbackItem.get(
                ConnectorCallbackItem.key(self.callback_id), ConnectorCallbackItem.SK, consistent_read=True
            )
        except ConnectorCallbackItem.DoesNotExist:
            return False
        return item.state == OPEN

    def withdraw(self) -> None:
        """The URL no longer works (the product answered at once, or the attempt failed)."""
        if self.callback_id is None:
            return
        try:
            ConnectorCallbackItem(ConnectorCallbackItem.key(self.callback_id), ConnectorCallbackItem.SK).delete(
                condition=ConnectorCallbackItem.state == OPEN
            )
        except Exception as error:  # noqa: BLE001 - used meanwhile: the callback route recorded it
            from rightsdesk.store.deletion import conditional_failure

            if not conditional_failure(error):
                raise
        self.callback_id = None
