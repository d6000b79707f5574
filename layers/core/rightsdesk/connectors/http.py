"""HTTP connector: the product's own endpoint, asked with a Standard Webhooks-signed POST per action.

rightsdesk POSTs `{"type": "rightsdesk.connector.<action>", "timestamp", "data": {"request_id",
"connector_id", "action", "identities": {kind: value}}}`, signed as deliveries to controllers are
(rightsdesk.platform.webhooks: `webhook-id` stable for one request, connector and action, so the
product can recognise a retry), through the SSRF guard (https to public addresses only; the
address checked is the one connected to; no redirects). The product answers at once, 2xx JSON:

- find:   `{"count": n, "keys"?: ["opaque id", ...], "yields"?: {"field": "value" | ["v", ...]}}`
- export: `{"records": [{...}, ...]}`
- erase:  `{"erased": n}` (erasing twice must be harmless on the product's side)
- verify: `{"remaining": n}`
- rectify (definition `rectifiable`; the data also holds `changes`: the product's field -> the
  corrected value): `{"rectified": n}` (setting a value twice must change nothing more); the
  re-read is a `verify` whose data holds the same `changes`, answered `{"remaining": n}`: the
  subject's records that do not hold the corrected values yet.

Any other status, a timeout or an answer that is not that JSON fails the step with a stable code
(`http_503`, `timeout`, `bad_answer`). The answer is read up to MAX_ANSWER_BYTES.

Finishing later: in a run, the erase and export requests carry `data.callback_url`, a one-time URL
(rightsdesk.connectors.callbacks). The product may answer 202 instead and POST the outcome there
when done; the step waits for it. A 202 to a request that offered no callback (find, verify, a
dry run) fails as `callback_not_supported`. An answer at once (or an error status) withdraws the
offer; a request that got no answer (a timeout) leaves it open until its deadline, since the product
may have received it and report through it.

The signing secret is named by its Secrets Manager ARN in the definition and read at run time
(`secrets`, injectable); a space-separated value is several secrets during a rotation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rightsdesk.connectors.base import (
    AwaitingCallback,
    Connector,
    ConnectorFailure,
    Erased,
    Found,
    Identities,
    Located,
    Rectified,
    key_hash,
)
from rightsdesk.connectors.definitions import HttpDefinition
from rightsdesk.platform import webhooks

EVENT_PREFIX = "rightsdesk.connector."
MAX_ANSWER_BYTES = 1024 * 1024
SECRET_MAX_AGE_SECONDS = 300


def secrets_manager_secrets(secret_arn: str) -> list[str]:
    """The signing secret(s) kept in Secrets Manager under `secret_arn` (cached for 5 minutes)."""
    from aws_lambda_powertools.utilities.parameters import get_secret

    return str(get_secret(secret_arn, max_age=SECRET_MAX_AGE_SECONDS)).split()


def _count(answer: dict[str, Any], name: str) -> int:
    value = answer.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConnectorFailure("bad_answer")
    return value


class HttpConnector(Connector):
    kind = "http"
    definition: HttpDefinition

    def __init__(
        self,
        definition: HttpDefinition,
        *,
        request_id: str,
        secrets: Callable[[str], list[str]] = secrets_manager_secrets,
        allow_loopback_http: bool | None = None,
    ):
        super().__init__(definition)
        self.request_id = request_id
        self._secrets = secrets
        if allow_loopback_http is None:
            from rightsdesk.platform.config import settings

            allow_loopback_http = settings().allow_http_webhooks
        self._allow_loopback_http = allow_loopback_http
        # Set by the run's step (rightsdesk.connectors.steps): offers a callback URL to erase and export.
        self.callback_offer: Any = None
        self._answered = False

    def _ask(
        self, action: str, identities: Identities, found: Found | None = None, *, changes: Any = None
    ) -> dict[str, Any]:
        offer = self.callback_offer if found is not None else None
        callback_url = offer.open(action, found) if offer is not None else None
        self._answered = False
        try:
            answer = self._exchange(action, identities, callback_url, changes)
        except AwaitingCallback:
            raise  # the offer stays open: the product reports through it
        except BaseException:
            # No answer (a timeout, a dropped connection): the product may have the request and
            # report through this URL; it stays open until its deadline. An answer withdraws it.
            if offer is not None and self._answered:
                offer.withdraw()
            raise
        if offer is not None:
            offer.withdraw()  # answered at once: the URL no longer works
        return answer

    def _exchange(
        self, action: str, identities: Identities, callback_url: str | None, changes: Any = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "request_id": self.request_id,
            "connector_id": self.id,
            "action": action,
            "identities": {kind: identities[kind] for kind in sorted(identities)},
        }
        if callback_url is not None:
            data["callback_url"] = callback_url
        if changes is not None:
            data["changes"] = {name: changes[name] for name in sorted(changes)}
        body = webhooks.envelope(EVENT_PREFIX + action, data)
        # A rectification's re-read is another message than an erasure's verify.
        asked = f"{action}-rectified" if changes is not None and action == "verify" else action
        msg_id = webhooks.webhook_id("connector", self.request_id, self.id, asked)
        headers = webhooks.signed_headers(self._secrets(self.definition.signing_secret_arn), msg_id, body)
        result, answer = webhooks.exchange(
            self.definition.url,
            body,
            headers,
            allow_loopback_http=self._allow_loopback_http,
            max_answer_bytes=MAX_ANSWER_BYTES + 1,
        )
        self._answered = result.status is not None
        if result.status == 202:
            if callback_url is None:
                raise ConnectorFailure("callback_not_supported")
            raise AwaitingCallback(action)
        if not result.ok:
            raise ConnectorFailure(result.cause)
        if len(answer) > MAX_ANSWER_BYTES:
            raise ConnectorFailure("answer_too_large")
        try:
            parsed = json.loads(answer)
        except ValueError:
            raise ConnectorFailure("bad_answer") from None
        if not isinstance(parsed, dict):
            raise ConnectorFailure("bad_answer")
        return parsed

    def find(self, identities: Identities) -> Found:
        if not self.needs <= identities.keys():
            return Found(self.id, dict(identities))
        answer = self._ask("find", identities)
        count = _count(answer, "count")
        keys = answer.get("keys")
        if keys is None:
            keys = [f"record-{n}" for n in range(count)]
        if not isinstance(keys, list) or len(keys) != count or not all(isinstance(k, str) for k in keys):
            raise ConnectorFailure("bad_answer")
        yielded = answer.get("yields") or {}
        if not isinstance(yielded, dict):
            raise ConnectorFailure("bad_answer")
        derived: dict[str, tuple[str, ...]] = {}
        for kind, field in self.yields.items():
            values = yielded.get(field)
            values = values if isinstance(values, list) else [values] if values is not None else []
            if not all(isinstance(v, str) and v for v in values):
                raise ConnectorFailure("bad_answer")
            if values:
                derived[kind] = tuple(dict.fromkeys(values))
        records = tuple(Located(key=f"{self.id}/{key}") for key in keys)
        return Found(self.id, dict(identities), records, derived)

    def export(self, found: Found) -> list[dict[str, Any]]:
        if not found.count:
            return []
        records = self._ask("export", found.identities, found).get("records")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ConnectorFailure("bad_answer")
        return records

    def erase(self, found: Found) -> Erased:
        erased = _count(self._ask("erase", found.identities, found), "erased")
        return Erased(
            erased=min(erased, found.count),
            already_gone=max(found.count - erased, 0),
            touched=tuple(key_hash(self.id, record.key) for record in found.records),
        )

    def verify(self, identities: Identities) -> int:
        if not self.needs <= identities.keys():
            return 0
        return _count(self._ask("verify", identities), "remaining")

    def rectify(self, found: Found, changes: Any) -> Rectified:
        rectified = _count(self._ask("rectify", found.identities, changes=changes), "rectified")
        return Rectified(
            rectified=min(rectified, found.count),
            unchanged=max(found.count - rectified, 0),
            touched=tuple(key_hash(self.id, record.key) for record in found.records),
        )

    def unrectified(self, identities: Identities, changes: Any) -> int:
        if not self.needs <= identities.keys():
            return 0
        return _count(self._ask("verify", identities, changes=changes), "remaining")
