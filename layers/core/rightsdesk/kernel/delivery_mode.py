"""How requests reach a controller: the one list of delivery modes.

A StrEnum: stored items, audit causes, API answers and webhook payloads keep the plain strings
("webhook", "email", "pull", "internal"), and a stored string compares equal to its member.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryMode(StrEnum):
    WEBHOOK = "webhook"  # signed POSTs to the controller's endpoint (Standard Webhooks)
    EMAIL = "email"  # a mail to the controller's privacy contact
    PULL = "pull"  # the controller fetches its requests from the controller API
    INTERNAL = "internal"  # the operator's own data: carried out here, nothing leaves


DELIVERY_MODES: tuple[str, ...] = tuple(mode.value for mode in DeliveryMode)
