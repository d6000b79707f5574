"""A controller's credentials: its API key (we keep a keyed hash) and its webhook signing secret
(we keep KMS ciphertext, since signing needs the secret itself). Both are shown once, when issued.
"""

from __future__ import annotations

import base64
import re
import secrets

from rightsdesk.platform import hashing, sealing

API_KEY_PREFIX = "rdk_"
# hashing.new_token: 32 random bytes, base64url without padding
API_KEY_PATTERN = re.compile(r"^rdk_[A-Za-z0-9_-]{43}$")
WEBHOOK_SECRET_PREFIX = "whsec_"  # Standard Webhooks: the library strips it and base64-decodes the rest
WEBHOOK_SECRET_BYTES = 32
_SEAL_PURPOSE = "webhook_secret"


def new_api_key() -> str:
    return hashing.new_token(API_KEY_PREFIX)


def api_key_hash(api_key: str) -> str:
    return hashing.keyed_hash("api_key", api_key)


def well_formed(api_key: str | None) -> bool:
    """A cheap check before any lookup; says nothing about whether the key is valid."""
    return bool(api_key) and API_KEY_PATTERN.fullmatch(api_key) is not None


def key_matches(api_key: str, stored_hash: str | None) -> bool:
    return hashing.matches("api_key", api_key, stored_hash)


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()


def seal_webhook_secret(secret: str, controller_id: str) -> str:
    return sealing.seal(secret, purpose=_SEAL_PURPOSE, owner=controller_id)


def unseal_webhook_secret(sealed: str, controller_id: str) -> str:
    return sealing.unseal(sealed, purpose=_SEAL_PURPOSE, owner=controller_id)
