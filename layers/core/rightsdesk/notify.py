"""Send one queued email: render it in the recipient's language and hand it to SES."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3

from rightsdesk import mail
from rightsdesk.config import settings


@dataclass(frozen=True)
class MailMessage:
    mail_id: str
    template: str
    locale: str
    to: str
    context: dict[str, Any]

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> MailMessage:
        return cls(
            mail_id=str(body["mail_id"]),
            template=str(body["template"]),
            locale=str(body.get("locale") or "en"),
            to=str(body["to"]),
            context=dict(body.get("context") or {}),
        )


@lru_cache(maxsize=1)
def _ses():
    return boto3.client("ses")


def forget_clients() -> None:
    _ses.cache_clear()


def send(message: MailMessage) -> dict[str, str]:
    """Send and return ids only (the result is stored by idempotency: no address in it)."""
    rendered = mail.render(message.template, message.locale, message.context)
    config = settings()
    request: dict[str, Any] = {
        "Source": config.mail_from,
        "Destination": {"ToAddresses": [message.to]},
        "Message": {
            "Subject": {"Data": rendered.subject, "Charset": "UTF-8"},
            "Body": {
                "Text": {"Data": rendered.text, "Charset": "UTF-8"},
                "Html": {"Data": rendered.html, "Charset": "UTF-8"},
            },
        },
        "Tags": [{"Name": "template", "Value": message.template}],
    }
    if config.ses_configuration_set:
        request["ConfigurationSetName"] = config.ses_configuration_set
    response = _ses().send_email(**request)
    return {"mail_id": message.mail_id, "ses_message_id": response["MessageId"]}
