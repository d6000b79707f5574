"""The two secrets a subject receives by mail, made with the stack's key, never stored in clear.

The verification code and the status token are derived (hashing.derived_token) from ids the table
keeps, so the notifier makes them again when it sends the mail and no queue message ever holds
them (rightsdesk.outbound.mail_kinds). Only their keyed hashes are stored; whoever lacks the key cannot
make either from the ids.
"""

from __future__ import annotations

import hashlib
import hmac

from rightsdesk.platform import hashing

CODE_DIGITS = 6


def verification_code(request_id: str) -> str:
    """The request's 6-digit code: one per request (a new submission is a new request)."""
    token = hashing.derived_token("verification_code", request_id)
    # 64 bits of the MAC reduced to six digits: the bias (< 1e-13) tells a guesser nothing.
    number = int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big")
    return f"{number % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def status_token(request_id: str, code_hash: str) -> str:
    """The request's status token: made again only from its id and its code's keyed hash, with the key."""
    return hashing.derived_token("status_token", request_id, code_hash, prefix="rst_")


def code_matches(request_id: str, code_hash: str | None) -> bool:
    """Whether the stored code hash is the derived code's (a code made otherwise cannot be made again)."""
    return hashing.matches("code", verification_code(request_id), code_hash)


def token_matches(request_id: str, code_hash: str, token_hash: str | None) -> bool:
    return bool(token_hash) and hmac.compare_digest(
        hashing.keyed_hash("status_token", status_token(request_id, code_hash)), token_hash or ""
    )
