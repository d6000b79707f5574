"""The emails SES has "sent", read from moto's in-process backend.

moto keeps a simple message's HTML *or* its text (not both) and drops its headers, so the send
operations are wrapped once to remember the full content by message id. Raw messages are parsed.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
from typing import Any

_extras: dict[str, dict] = {}
_lock = threading.Lock()
_installed = False


def install_capture() -> None:
    global _installed
    if _installed:
        return
    from moto.ses.responses import EmailResponse
    from moto.sesv2.responses import SESV2Response

    v1_send = EmailResponse.send_email
    v2_send = SESV2Response.send_email

    def send_v1(self: Any) -> Any:
        result = v1_send(self)
        message_id = (getattr(result, "result", None) or {}).get("MessageId")
        _remember(
            message_id,
            {
                "text": self._get_param("Message.Body.Text.Data"),
                "html": self._get_param("Message.Body.Html.Data"),
                "configuration_set": self._get_param("ConfigurationSetName"),
            },
        )
        return result

    def send_v2(self: Any) -> Any:
        result = v2_send(self)
        params = json.loads(self.body)
        simple = (params.get("Content") or {}).get("Simple")
        if simple:
            body = simple.get("Body") or {}
            _remember(
                json.loads(result).get("MessageId"),
                {
                    "text": (body.get("Text") or {}).get("Data"),
                    "html": (body.get("Html") or {}).get("Data"),
                    "headers": [[h.get("Name"), h.get("Value")] for h in simple.get("Headers") or []],
                    "configuration_set": params.get("ConfigurationSetName"),
                },
            )
        return result

    EmailResponse.send_email = send_v1
    SESV2Response.send_email = send_v2
    _installed = True


def _remember(message_id: str | None, extra: dict) -> None:
    if message_id:
        with _lock:
            _extras[message_id] = extra


def _backend(account_id: str, region: str) -> Any:
    from moto.backends import get_backend

    return get_backend("ses")[account_id][region]


def messages(account_id: str, region: str) -> list[dict]:
    """Every sent email, in send order."""
    out = []
    for message in list(_backend(account_id, region).sent_messages):
        if hasattr(message, "raw_data"):
            out.append(_raw(message))
        elif hasattr(message, "subject"):
            out.append(_simple(message))
        else:
            out.append(
                {
                    "id": getattr(message, "id", None),
                    "kind": "template",
                    "from": message.source,
                    "to": _addresses(message.destinations),
                    "template": message.template,
                    "template_data": message.template_data,
                }
            )
    return out


def clear(account_id: str, region: str) -> None:
    _backend(account_id, region).sent_messages.clear()
    with _lock:
        _extras.clear()


def _addresses(destinations: Any, kind: str = "ToAddresses") -> list[str]:
    if isinstance(destinations, dict):
        return list(destinations.get(kind) or [])
    return list(destinations or [])


def _simple(message: Any) -> dict:
    with _lock:
        extra = _extras.get(message.id)
    if extra is None:
        # Not captured (sent before the wrapper): moto kept one body; tell HTML from text by its look.
        looks_html = message.body.lstrip().startswith("<")
        extra = {"text": None if looks_html else message.body, "html": message.body if looks_html else None}
    return {
        "id": message.id,
        "kind": "simple",
        "from": message.source,
        "to": _addresses(message.destinations),
        "cc": _addresses(message.destinations, "CcAddresses"),
        "bcc": _addresses(message.destinations, "BccAddresses"),
        "subject": message.subject,
        "text": extra.get("text"),
        "html": extra.get("html"),
        "headers": extra.get("headers") or [],
        "configuration_set": extra.get("configuration_set"),
    }


def _raw(message: Any) -> dict:
    parsed = email.message_from_string(message.raw_data, policy=email.policy.default)
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    # moto adds the header recipients to the envelope ones; each address once, in order.
    to = list(dict.fromkeys(_addresses(message.destinations) or [str(a) for a in parsed.get_all("To", [])]))
    return {
        "id": message.id,
        "kind": "raw",
        "from": message.source or str(parsed.get("From", "")),
        "to": to,
        "cc": [str(a) for a in parsed.get_all("Cc", [])],
        "bcc": [],
        "subject": str(parsed.get("Subject", "")),
        "text": text.get_content() if text is not None else None,
        "html": html.get_content() if html is not None else None,
        "headers": [[name, str(value)] for name, value in parsed.items()],
        "configuration_set": None,
    }
