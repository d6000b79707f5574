"""The emails SES has "sent", read from moto's backend inside moto's process (local/moto_process.py serves them).

moto keeps a simple message's HTML *or* its text (not both) and drops its headers, so its send
operations hand the full content to `remember`, by message id (local/moto_patches.py). Raw
messages are parsed.
"""

from __future__ import annotations

import email
import email.policy
import threading
from typing import Any

_extras: dict[str, dict] = {}
_parsed: dict[str, dict] = {}  # message id -> the raw message, parsed once
_lock = threading.Lock()


def remember(message_id: str | None, extra: dict) -> None:
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
            out.append(dict(_parsed_raw(message)))
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
        _parsed.clear()


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


def _parsed_raw(message: Any) -> dict:
    # A sent mail never changes, and tests and `make load` read the outbox again and again: parsing
    # every MIME message on each read grew with the outbox (most of moto's time during `make load`).
    with _lock:
        parsed = _parsed.get(message.id)
    if parsed is None:
        parsed = _raw(message)
        with _lock:
            _parsed[message.id] = parsed
    return parsed


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
