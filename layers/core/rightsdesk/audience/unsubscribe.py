"""One-click unsubscribe links for optional lists (RFC 8058): signed, single-use, no login.

A token names the contact (its keyed email hash), the list, the day it was issued and a random
nonce, and carries an HMAC under the platform's hash key: nobody without the key can make one,
and changing any part breaks it. It is spent with a conditional write of its nonce, in the same
transaction that takes the contact off the list, so it works exactly once; it expires after the
retention rule `unsubscribe_token`, which is also how long the spent nonce is remembered.

A GET of the link only shows a confirmation page (mail scanners fetch links); the POST, from that
page or straight from the mail client's List-Unsubscribe-Post, unsubscribes.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from pynamodb.exceptions import TransactWriteError

from rightsdesk.audience import contacts
from rightsdesk.kernel import clock, retention
from rightsdesk.kernel.errors import RightsdeskError
from rightsdesk.platform import hashing
from rightsdesk.store.items.audience import SpentTokenItem
from rightsdesk.store.items.table import transaction

VERSION = "u1"
PATH = "/v1/unsubscribe"
MAC_HEX = 32  # 128 bits of HMAC-SHA256: forging one is 2^128 guesses
ONE_CLICK = "List-Unsubscribe=One-Click"


class InvalidToken(RightsdeskError):
    status = 400
    code = "link_invalid"


class SpentToken(RightsdeskError):
    status = 410
    code = "link_invalid"


@dataclass(frozen=True)
class Claims:
    email_hash: str
    list_name: str
    issued_day: int  # days since the epoch, UTC
    nonce: str

    @property
    def issued_at(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=self.issued_day)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def _mac(payload: str) -> str:
    return hashing.keyed_hash("unsubscribe", payload)[:MAC_HEX]


def issue(email_hash: str, list_name: str, at: datetime | None = None) -> str:
    if not contacts.mailing_list(list_name).optional:
        raise ValueError(f"{list_name} is transactional: its mail has no unsubscribe link")
    day = int((at or clock.now()).timestamp()) // 86400
    payload = "|".join((VERSION, list_name, email_hash, str(day), secrets.token_hex(8)))
    return f"{_b64(payload)}.{_mac(payload)}"


def link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{PATH}?token={quote(token, safe='')}"


def headers(url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058: mail clients show an unsubscribe button that POSTs to `url`."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK}


def verify(token: str | None, now: datetime | None = None) -> Claims:
    """The token's claims, if we made it, it is whole and not expired. Does not spend it."""
    encoded, _, mac = (token or "").partition(".")
    try:
        payload = _unb64(encoded)
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("this link is not valid") from None
    # compare_digest before looking inside: a forged token learns nothing from the answer's timing
    if len(mac) != MAC_HEX or not hashing.same_text(mac, _mac(payload)):
        raise InvalidToken("this link is not valid")
    parts = payload.split("|")
    if len(parts) != 5 or parts[0] != VERSION or parts[1] not in contacts.LISTS or not parts[3].isdigit():
        raise InvalidToken("this link is not valid")
    claims = Claims(email_hash=parts[2], list_name=parts[1], issued_day=int(parts[3]), nonce=parts[4])
    if claims.issued_at + retention.keep_for(retention.Rule.UNSUBSCRIBE_TOKEN) <= (now or clock.now()):
        raise SpentToken("this link has expired")
    return claims


def check(token: str | None) -> Claims:
    """`verify`, and SpentToken if it was used already: what the confirmation page may show."""
    claims = verify(token)
    if _spent_before(claims.nonce):
        raise SpentToken("this link has already been used")
    return claims


def spend(token: str | None) -> Claims:
    """Unsubscribe the token's contact from its list, once. SpentToken on the second use."""
    claims = verify(token)
    now = clock.now()
    spent = SpentTokenItem(
        SpentTokenItem.key(claims.nonce),
        SpentTokenItem.SK,
        list_name=claims.list_name,
        spent_at=now,
        expires_at=retention.expires_at(retention.Rule.UNSUBSCRIBE_TOKEN, claims.issued_at),
    )
    still_a_contact = contacts.get(claims.email_hash) is not None
    try:
        with transaction() as tx:
            tx.save(spent, condition=SpentTokenItem.pk.does_not_exist())
            if still_a_contact:
                contacts.unsubscribe_writes(tx, claims.email_hash, claims.list_name, actor="subject", at=now)
    except TransactWriteError as error:
        if _spent_before(claims.nonce):
            raise SpentToken("this link has already been used") from error
        raise
    if still_a_contact:
        contacts.forget_if_unsubscribed(claims.email_hash)
    return claims


def _spent_before(nonce: str) -> bool:
    try:
        SpentTokenItem.get(SpentTokenItem.key(nonce), SpentTokenItem.SK, consistent_read=True)
    except SpentTokenItem.DoesNotExist:
        return False
    return True
