"""What counts as an email address and as a site key, and how each is normalised: one module that
every layer reads (intake, the registry, the audience, the store's keys and the public API's
idempotency keys), so two spellings of one site can never be told apart in one place and not another.
"""

from __future__ import annotations

import re

# Deliberately loose: the address is proven by the emailed code, not by its spelling.
EMAIL_PATTERN = r"^[^@\s<>()\[\]\\,;:\"]{1,64}@[^@\s<>()\[\]\\,;:\"]{1,252}\.[^@\s<>()\[\]\\,;:\".]{2,63}$"
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
_EMAIL = re.compile(EMAIL_PATTERN)


def normalize_email(address: str) -> str:
    """The address as stored and mailed: surrounding space removed, its spelling otherwise kept (the
    keyed hash folds case: rightsdesk.platform.hashing.normalize_email)."""
    return address.strip()


def is_valid_email(address: str) -> bool:
    """Whether a (normalised) address may be stored: at most 254 characters, of EMAIL_PATTERN's shape."""
    return len(address) <= MAX_EMAIL_LENGTH and _EMAIL.fullmatch(address) is not None


def normalize_site_key(site: str) -> str:
    """A site key or domain as the store keys it: surrounding whitespace removed, lower case. Every
    entry point (the form and API, the idempotency key, the registry's lookups and claims, the
    SITE# item key) goes through this, so " Demo ", "demo" and "DEMO\\t" are one site everywhere."""
    return site.strip().lower()
