"""Secrets we must read back (webhook signing secrets), stored only as KMS ciphertext.

The encryption context names the purpose and the owner, so a ciphertext copied onto another
controller's item does not decrypt there; the template grants kms:Decrypt and kms:Encrypt per
purpose (condition kms:EncryptionContext:rightsdesk:purpose), so only the functions that need a
purpose's secrets can open them (tests/template/test_least_privilege.py). A new purpose needs its
own statement on the functions that seal or unseal it. Decrypted values are cached per ciphertext: the
dispatcher signs many deliveries with the same secret and one KMS call per delivery buys nothing.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from rightsdesk.platform import aws_clients
from rightsdesk.platform.config import settings


def _kms():
    return aws_clients.client("kms")


def forget_clients() -> None:
    """Forget the secrets decrypted so far (the KMS clients themselves are aws_clients')."""
    _unseal.cache_clear()


def _context(purpose: str, owner: str) -> dict[str, str]:
    return {"rightsdesk:purpose": purpose, "rightsdesk:owner": owner}


def seal(plaintext: str, *, purpose: str, owner: str) -> str:
    key_id = settings().data_key_id
    if not key_id:
        raise RuntimeError("no data key configured (DATA_KEY_ID)")
    blob = _kms().encrypt(KeyId=key_id, Plaintext=plaintext.encode(), EncryptionContext=_context(purpose, owner))
    return base64.b64encode(blob["CiphertextBlob"]).decode()


def unseal(sealed: str, *, purpose: str, owner: str) -> str:
    return _unseal(sealed, purpose, owner)


@lru_cache(maxsize=256)
def _unseal(sealed: str, purpose: str, owner: str) -> str:
    # No KeyId: the ciphertext names its key, and decrypting with a rotated key version still works.
    blob = _kms().decrypt(CiphertextBlob=base64.b64decode(sealed), EncryptionContext=_context(purpose, owner))
    return blob["Plaintext"].decode()
