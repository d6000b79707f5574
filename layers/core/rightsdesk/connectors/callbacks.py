"""The HTTP connector finishing later: one-time callback URLs (docs/connectors.md, "HTTP").

When a run's step asks an HTTP connector to erase or export, it offers a callback URL in the
request (`data.callback_url`, `POST <public base URL>/v1/connectors/callback/<token>`). The product
answers at once (the offer is withdrawn: the URL no longer works), or answers 202 and calls the URL
later with the outcome. Meanwhile the step is `waiting_callback` and Step Functions is not answered;
the callback route (ConnectorCallbackFunction) records the outcome as a synchronous step would (the
receipt entry, the export section) and answers the task with the stored task token, so the run
goes on. A callback that never comes fails its step when the step timeout
(ConnectorStepTimeoutSeconds) has passed on the clock (`expire_due`, from the worker's schedule):
the run parks, as for any failing step.

The token is `cb_<callback id>_<secret>`: the id finds the offer, the secret is stored only as a
keyed hash and compared in constant time. An unknown id and a wrong secret answer the same 404
(`callback_not_found`: the route is no oracle); with the right secret, a second call answers 409
(`callback_used`), a call after the deadline 410 (`callback_expired`). The body must be signed as
rightsdesk signs its own requests to the product (Standard Webhooks, the connector's secret), within
5 minutes of the signature's timestamp.

The body (`CallbackBody`): `{"result": "done" | "nothing_found" | "failed", "erased"?, "remaining"?,
"records"?, "failure"?}`; an erasure reports `erased` and the product's re-query `remaining` (more
than 0 fails the step, `records_remain`, as a synchronous erasure's), an export its `records`.

The task token and the secret never reach a log, a metric or a message.
"""

from __future__ import annotations

import binascii
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import UpdateError

from rightsdesk.connectors import base
from rightsdesk.connectors.callback_offers import EXPIRED, HASH_PURPOSE, OPEN, TOKEN_PREFIX, USED
from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound, RightsdeskError, Unauthorized
from rightsdesk.platform import hashing, webhooks
from rightsdesk.store.items.connector_callbacks import CALLBACK_DUE_INDEX_KEY, ConnectorCallbackItem

if TYPE_CHECKING:
    from rightsdesk.connectors.callback_body import CallbackBody

log = logging.getLogger(__name__)

# As large as a synchronous answer may be (rightsdesk.connectors.http.MAX_ANSWER_BYTES).
MAX_BODY_BYTES = 1024 * 1024
SIGNATURE_TOLERANCE_SECONDS = 300
TIMEOUT_CODE = "callback_timeout"
PRODUCT_FAILED = "product_failed"

_NOT_FOUND_MESSAGE = "no such callback"


class CallbackExpired(RightsdeskError):
    status = 410
    code = "callback_expired"


@dataclass
class Completed:
    """What the route answers the product: the step's summary (counts and words only)."""

    request_id: str
    connector_id: str
    result: str
    summary: dict[str, Any]


def _now_iso() -> str:
    return clock.isoformat(clock.now())


# ------------------------------------------------------------------ completing (the callback route)


def _parse_token(token: str) -> tuple[str, str] | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    callback_id, _, secret = token.removeprefix(TOKEN_PREFIX).partition("_")
    if len(callback_id) != 20 or not secret or not all(ch in "0123456789abcdef" for ch in callback_id):
        return None
    return callback_id, secret


def _offer(token: str) -> ConnectorCallbackItem:
    """The offer the token opens; the same NotFound for an unknown id and a wrong secret, after the
    same hashing work."""
    parsed = _parse_token(token)
    callback_id, secret = parsed if parsed is not None else ("", token)
    item = None
    if parsed is not None:
        try:
            item = ConnectorCallbackItem.get(
                ConnectorCallbackItem.key(callback_id), ConnectorCallbackItem.SK, consistent_read=True
            )
        except ConnectorCallbackItem.DoesNotExist:
            item = None
    if item is not None and item.expires_at is not None and item.expires_at <= int(clock.now().timestamp()):
        item = None  # gone by its TTL, whenever DynamoDB deletes it
    if not hashing.matches(HASH_PURPOSE, secret, item.secret_hash if item is not None else None) or item is None:
        raise NotFound(_NOT_FOUND_MESSAGE, code="callback_not_found")
    return item


def _secrets(connector_id: str) -> list[str]:
    from rightsdesk.connectors import registry

    try:
        stored = registry.get(connector_id)
    except NotFound:
        stored = None
    if stored is None or stored.definition is None or stored.definition.kind != "http":
        raise Conflict("the connector was removed or changed since it was asked", code="connector_removed")
    return SECRETS(stored.definition.signing_secret_arn)


def _default_secrets(secret_arn: str) -> list[str]:
    from rightsdesk.connectors.http import secrets_manager_secrets

    return secrets_manager_secrets(secret_arn)


# Tests set this (a dict lookup); by default the connector's Secrets Manager secret.
SECRETS: Any = _default_secrets


def verify_signature(secret_values: list[str], body: bytes, headers: Mapping[str, str]) -> None:
    """Standard Webhooks: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with one of the
    connector's secrets (several during a rotation), the timestamp within 5 minutes of now (the
    wall clock, as the signer's). Unauthorized otherwise."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get("webhook-id") or ""
    stamp = lowered.get("webhook-timestamp") or ""
    given = (lowered.get("webhook-signature") or "").split()
    refused = Unauthorized(
        "the body must be signed with the connector's secret (Standard Webhooks)", code="bad_signature"
    )
    if not msg_id or not stamp.isdigit() or not given or len(given) > 10:
        raise refused
    if abs(time.time() - int(stamp)) > SIGNATURE_TOLERANCE_SECONDS:
        raise Unauthorized("the signature's timestamp is too old or in the future", code="signature_expired")
    expected = []
    for secret in secret_values:
        try:
            expected.append(webhooks.sign(secret, msg_id, int(stamp), body).encode())
        except (binascii.Error, ValueError):
            continue
    matched = False
    for signature in given:
        for candidate in expected:
            matched |= hmac.compare_digest(signature.encode("utf-8", "surrogatepass"), candidate)
    if not matched:
        raise refused


def parse_body(body: bytes, action: str) -> CallbackBody:
    """The product's report, checked against what the step asked (erasure counts or records)."""
    from pydantic import ValidationError

    from rightsdesk.connectors.callback_body import CallbackBody  # pydantic: built by the first callback

    try:
        parsed = CallbackBody.model_validate_json(body)
    except ValidationError as error:
        fields = {".".join(str(p) for p in e["loc"]) or "body": e["type"] for e in error.errors()[:10]}
        raise InvalidInput("the callback body is not a valid outcome", fields=fields) from None
    if parsed.result == "done" and action == "erase" and (parsed.erased is None or parsed.remaining is None):
        raise InvalidInput(
            "an erasure reports erased and remaining", fields={"erased": "missing", "remaining": "missing"}
        )
    if parsed.result == "done" and action == "export" and parsed.records is None:
        raise InvalidInput("an export reports its records", fields={"records": "missing"})
    if action == "erase" and parsed.records is not None:
        raise InvalidInput("an erasure reports no records", fields={"records": "not_allowed"})
    return parsed


def outcome_of(item: ConnectorCallbackItem, reported: CallbackBody) -> tuple[base.Outcome, list[dict[str, Any]]]:
    """The step's outcome, as a synchronous step would have left it, and the export's records."""
    partial = json.loads(item.partial or "{}")
    found = int(partial.get("found") or 0)
    outcome = base.Outcome(
        connector_id=item.connector_id,
        kind="http",
        role_arn=None,
        action=item.action,
        result=base.NOTHING_FOUND,
        started_at=str(partial.get("started_at") or clock.isoformat(item.offered_at)),
        found=found,
        touched=list(partial.get("touched") or []),
        identities=dict(partial.get("identities") or {}),
    )
    records: list[dict[str, Any]] = []
    if reported.result == "failed":
        outcome.result = base.FAILED
        outcome.failure = {"code": reported.failure or PRODUCT_FAILED}
    elif item.action == "erase":
        erased = reported.erased or 0
        outcome.erased = min(erased, found) if found else erased
        outcome.remaining = reported.remaining or 0
        if outcome.remaining:
            outcome.result = base.FAILED
            outcome.failure = {"code": "records_remain"}
        elif found or erased:
            outcome.result = base.DONE
    else:
        records = list(reported.records or [])
        outcome.found = len(records) if reported.result == "done" else 0
        outcome.result = base.DONE if records else base.NOTHING_FOUND
    outcome.finished_at = _now_iso()
    return outcome, records


def _claim(item: ConnectorCallbackItem) -> None:
    """open -> used, once: of two calls at once, one wins."""
    try:
        item.update(
            actions=[ConnectorCallbackItem.state.set(USED), ConnectorCallbackItem.used_at.set(clock.now())],
            condition=ConnectorCallbackItem.state == OPEN,
        )
    except UpdateError as error:
        raise Conflict("this callback was used already", code="callback_used") from error


def _release(item: ConnectorCallbackItem) -> None:
    """Our failure after the claim: the product may call again."""
    try:
        item.update(
            actions=[ConnectorCallbackItem.state.set(OPEN), ConnectorCallbackItem.used_at.remove()],
            condition=ConnectorCallbackItem.state == USED,
        )
    except UpdateError:
        log.warning("callback release failed", extra={"callback_id": item.callback_id})


def _spent(item: ConnectorCallbackItem) -> None:
    """Used or expired: the token and the index entry go (the item answers a late second call)."""
    item.update(
        actions=[
            ConnectorCallbackItem.task_token.remove(),
            ConnectorCallbackItem.partial.remove(),
            ConnectorCallbackItem.gsi2pk.remove(),
            ConnectorCallbackItem.gsi2sk.remove(),
        ]
    )


def complete(token: str, body: bytes, headers: Mapping[str, str]) -> Completed:
    """The product's callback: check the token, the deadline and the signature, record the outcome
    and answer the run's task. NotFound, Conflict (used), CallbackExpired, Unauthorized (signature)
    or InvalidInput (body); nothing is stored on any of them."""
    from rightsdesk.connectors import execution

    item = _offer(token)
    if item.state == USED:
        raise Conflict("this callback was used already", code="callback_used")
    if item.state == EXPIRED or clock.now() >= item.deadline:
        raise CallbackExpired("this callback has expired: the step timed out and its request waits for the operator")
    verify_signature(_secrets(item.connector_id), body, headers)
    reported = parse_body(body, item.action)
    outcome, records = outcome_of(item, reported)
    task_token = item.task_token or ""
    _claim(item)
    try:
        summary, failure = execution.record_callback_step(
            item.request_id, int(item.run), item.connector_id, outcome, records, attempt=int(item.attempt)
        )
        execution.answer_task(task_token, summary, failure)
    except Exception:
        _release(item)
        raise
    _spent(item)
    return Completed(item.request_id, item.connector_id, outcome.result, summary)


# ------------------------------------------------------------------ the deadline (the worker's schedule)


def expire_due(now: Any = None, limit: int = 100) -> int:
    """Fail the steps whose callback never came by their deadline: the receipt names the timeout,
    the task fails and the run parks. A query of the due index: its cost follows the offers that
    are due. Returns how many steps were failed."""
    from rightsdesk.connectors import execution

    now = now or clock.now()
    due = ConnectorCallbackItem.by_expiry.query(
        CALLBACK_DUE_INDEX_KEY, ConnectorCallbackItem.gsi2sk <= f"{clock.isoformat(now)}#\uffff", limit=limit
    )
    failed = 0
    for key in due:
        try:
            item = ConnectorCallbackItem.get(key.pk, key.sk, consistent_read=True)
        except ConnectorCallbackItem.DoesNotExist:
            continue
        if item.state != OPEN or item.deadline > now:
            continue
        try:
            item.update(
                actions=[ConnectorCallbackItem.state.set(EXPIRED)], condition=ConnectorCallbackItem.state == OPEN
            )
        except UpdateError:
            continue  # the callback came meanwhile
        task_token = item.task_token or ""
        outcome = base.Outcome(
            connector_id=item.connector_id,
            kind="http",
            role_arn=None,
            action=item.action,
            result=base.FAILED,
            started_at=clock.isoformat(item.offered_at),
            finished_at=clock.isoformat(now),
            failure={"code": TIMEOUT_CODE},
        )
        if execution.callback_timed_out(item.request_id, int(item.run), item.connector_id, outcome, int(item.attempt)):
            execution.answer_task(task_token, None, TIMEOUT_CODE)
            failed += 1
        _spent(item)
    return failed


def token_of_url(url: str) -> str:
    """The token at the end of a callback URL (tests and docs)."""
    return url.rsplit("/", 1)[-1]
