"""The ids an erasure's execution starts from besides the request's address (REQ#<id> / SEED),
kept by the erasures the operator opens itself (rightsdesk.lifecycle.erasures): read here, low in
the layers, so the execution's starting point (own_requests, connectors) can ask without knowing
the lifecycle."""

from __future__ import annotations

from rightsdesk.store.items.accounts import ErasureSeedItem
from rightsdesk.store.items.requests import RequestItem


def seed(request_id: str) -> ErasureSeedItem | None:
    try:
        return ErasureSeedItem.get(RequestItem.key(request_id), ErasureSeedItem.SK, consistent_read=True)
    except ErasureSeedItem.DoesNotExist:
        return None


def execution_identities(request_id: str, email: str | None) -> dict[str, str] | None:
    """The seed identities for the connectors' execution of an erasure the lifecycle opened: the
    request's address and the ids the account was known by. None for any other request (the
    execution then starts from the verified email, its default)."""
    return identities_of(seed(request_id), email)


def identities_of(found: ErasureSeedItem | None, email: str | None) -> dict[str, str] | None:
    """`execution_identities` from a seed already read."""
    if found is None or found.identities is None:
        return None
    identities = dict(found.identities.as_dict())
    if email:
        identities.setdefault("email", email)
    return identities


def opened_for(request_id: str) -> str | None:
    """Why the lifecycle opened the request (inactivity, cancellation, consent_expiry), or None."""
    found = seed(request_id)
    return found.cause if found is not None else None
