"""The raw MIME message SES sends: SES v1 SendEmail cannot carry our own headers (List-Unsubscribe),
SendRawEmail can, so every mail is built here with the standard library.

multipart/alternative with the text part first (RFC 2046: the preferred, richer part comes last),
both quoted-printable UTF-8; header values are folded and encoded by the email policy.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from rightsdesk.render.mail import RenderedMail

# Headers a caller may add; anything else (From, To, Subject...) is ours to set.
EXTRA_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"})


def build(*, sender: str, to: str, mail: RenderedMail, headers: dict[str, str] | None = None) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    message["MIME-Version"] = "1.0"
    for name, value in (headers or {}).items():
        if name not in EXTRA_HEADERS or "\n" in value or "\r" in value:
            raise ValueError(f"header {name!r} may not be set here")
        message[name] = value
    message.set_content(mail.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(mail.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message.as_bytes()
