"""Keyed hashes for everything secret or personal that must be found again but never read back.

Verification codes, status tokens, API keys and e-mail addresses are stored only as
HMAC-SHA256 under a key kept in Secrets Manager. Comparisons are constant-time. A secret that must
be made again later (a status token, rightsdesk.intake.submissions.verify) is derived under the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import unicodedata
from functools import lru_cache

from rightsdesk.platform.config import settings


@lru_cache(maxsize=1)
def _key() -> bytes:
    config = settings()
    if config.hash_key:
        return config.hash_key.encode()
    if not config.hash_key_secret_arn:
        raise RuntimeError("no hash key configured (HASH_KEY_SECRET_ARN or RIGHTSDESK_HASH_KEY)")
    from aws_lambda_powertools.utilities.parameters import get_secret

    return str(get_secret(config.hash_key_secret_arn, max_age=3600)).encode()


def forget_key() -> None:
    _key.cache_clear()


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC of `value`, domain-separated by `purpose` so a code hash never matches a token hash."""
    mac = hmac.new(_key(), f"{purpose}\x00{value}".encode(), hashlib.sha256)
    return mac.hexdigest()


def matches(purpose: str, value: str, stored_hash: str | None) -> bool:
    if not stored_hash:
        # Still spend the hashing work so a missing record is not faster than a wrong value.
        hmac.compare_digest(keyed_hash(purpose, value), "0" * 64)
        return False
    return hmac.compare_digest(keyed_hash(purpose, value), stored_hash)


def fingerprint(purpose: str, payload: object) -> str:
    """A keyed hash of a JSON-able value (canonical: sorted keys, no spaces): tells two bodies apart
    without keeping anything an address could be guessed back from, as an unkeyed hash would."""
    return keyed_hash(purpose, json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def normalize_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email).strip().casefold()


def email_hash(email: str) -> str:
    return keyed_hash("email", normalize_email(email))


def new_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def derived_token(purpose: str, *parts: str, prefix: str = "") -> str:
    """A secret that the same `parts` always give again, and that nobody can make without the key:
    HMAC-SHA256 over `purpose` and the parts, 256 bits in URL-safe base64 like new_token's. The
    leading "derived" label keeps it apart from keyed_hash's values (no keyed_hash purpose is "derived")."""
    message = "\x00".join(("derived", purpose, *parts)).encode()
    mac = hmac.new(_key(), message, hashlib.sha256).digest()
    return prefix + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def same_text(given: str, expected: str) -> bool:
    """Constant-time equality of a value from outside (a cursor's or a link's signature) and ours.
    On bytes: hmac.compare_digest refuses a str with non-ASCII characters (TypeError, a 500)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
