"""Policy versions: published once, never changed, all readable in the public archive.

A version is POLICY#<doc> / VERSION#<version> with its URL, a summary per language and the moment
it takes effect; the current version is the latest one in effect. Publishing a major (material)
version emails every concerned party: each controller's privacy contact and every contact on the
policy_notices or policy_updates list, once per address, as a transactional notice. A minor version
goes only to the optional policy_updates list, each mail with a one-click unsubscribe link.
Controllers delivering by webhook also get a signed `policy.updated` event of a major version
(sent by the dispatcher; its outcome goes on the controller's audit trail).

Publishing is idempotent: the same version with the same content again only queues its mails again
(the notifier sends each mail id once), so an interrupted fan-out is finished by running it again;
the same version with other content is a conflict, because the archive must not change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from pynamodb.exceptions import TransactWriteError

from rightsdesk.audience import contacts
from rightsdesk.kernel import clock
from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import Conflict, InvalidInput, NotFound
from rightsdesk.platform import hashing, webhooks
from rightsdesk.platform.config import DEFAULT_LOCALE, SUPPORTED_LOCALES
from rightsdesk.platform.operator_identity import Actor, actor_name
from rightsdesk.routing import controller_lookup
from rightsdesk.store import audit, outbox, queries
from rightsdesk.store.deletion import conditional_failure
from rightsdesk.store.items.audit import AuditEvent
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk.store.items.notices import PolicyVersionItem
from rightsdesk.store.items.table import transaction

DOC = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
MAX_SUMMARY = 8000
MAX_TEXT_BYTES = 2 * 1024 * 1024
WEBHOOK_EVENT = webhooks.EVENT_POLICY_UPDATED
WEBHOOK_AUDIT = "policy_webhook"
ARCHIVE_PATH = "/v1/policies/{doc}"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Publication:
    doc: str
    version: str
    url: str
    summaries: dict[str, str]  # locale -> text; English is required
    # The document's full text exactly as published at `url` (bytes as served; str as UTF-8). Only
    # its SHA-256 and size are kept: anyone holding a copy can prove it is the version in force.
    text: bytes | str
    major: bool = False
    effective_at: datetime | None = None  # None: now
    actor: Actor = "operator"


@dataclass(frozen=True)
class Published:
    version: PolicyVersionItem
    created: bool  # False: it was published before with the same content


def _check(publication: Publication) -> None:
    problems = {}
    if not DOC.fullmatch(publication.doc):
        problems["doc"] = "invalid_format"
    if not VERSION.fullmatch(publication.version):
        problems["version"] = "invalid_format"
    url = urlsplit(publication.url)
    if url.scheme != "https" or not url.netloc or len(publication.url) > 2000:
        problems["url"] = "invalid_format"
    if not publication.summaries.get(DEFAULT_LOCALE, "").strip():
        problems["summary"] = "required"
    text = text_bytes(publication.text)
    if not text.strip():
        problems["text"] = "required"
    elif len(text) > MAX_TEXT_BYTES:
        problems["text"] = "too_long"
    for locale, text in publication.summaries.items():
        if locale not in SUPPORTED_LOCALES:
            problems[f"summary_{locale}"] = "invalid_choice"
        elif len(text) > MAX_SUMMARY:
            problems[f"summary_{locale}"] = "too_long"
    if problems:
        raise InvalidInput("this policy version cannot be published as given", fields=problems)


def text_bytes(text: bytes | str | None) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else (text or b"")


def text_digest(text: bytes | str) -> str:
    """The SHA-256 recorded for a version's text: `sha256sum` of the file as published gives the same."""
    return hashlib.sha256(text_bytes(text)).hexdigest()


def _content_hash(publication: Publication, effective_at: datetime) -> str:
    content = {
        "url": publication.url,
        "text_sha256": text_digest(publication.text),
        "summaries": {k: v.strip() for k, v in sorted(publication.summaries.items()) if v.strip()},
        "major": publication.major,
        "effective_at": clock.isoformat(effective_at),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def publish(publication: Publication, *, now: datetime | None = None) -> Published:
    _check(publication)
    now = now or clock.now()
    effective_at = publication.effective_at or now
    digest = _content_hash(publication, effective_at)
    item = PolicyVersionItem(
        PolicyVersionItem.key(publication.doc),
        f"{PolicyVersionItem.SK_PREFIX}{publication.version}",
        doc=publication.doc,
        version=publication.version,
        url=publication.url,
        summaries={k: v.strip() for k, v in publication.summaries.items() if v.strip()},
        major=publication.major,
        effective_at=effective_at,
        published_at=now,
        published_by=actor_name(publication.actor),  # who exactly: the policy_published audit event
        content_hash=digest,
        text_sha256=text_digest(publication.text),
        text_bytes=len(text_bytes(publication.text)),
        gsi1pk=PolicyVersionItem.PARTITION,
        gsi1sk=f"{publication.doc}#{publication.version}",
    )
    # Who published it: an audit event on the document, written with the version or not at all.
    published = audit.event(item.pk, action="policy_published", actor=publication.actor, at=now, cause=item.sk)
    try:
        with transaction() as tx:
            tx.save(item, condition=PolicyVersionItem.sk.does_not_exist())
            tx.save(published, condition=AuditEvent.sk.does_not_exist())
    except TransactWriteError as error:
        if not conditional_failure(error):
            raise
        existing = get(publication.doc, publication.version)
        if existing.content_hash != digest:
            raise Conflict(
                f"{publication.doc} {publication.version} is published with other content; publish a new version",
                code="version_exists",
            ) from None
        return Published(existing, created=False)
    return Published(item, created=True)


# ------------------------------------------------------------------ reading (the archive)


def get(doc: str, version: str) -> PolicyVersionItem:
    if not DOC.fullmatch(doc or "") or not VERSION.fullmatch(version or ""):
        raise NotFound("no such policy version")
    try:
        return PolicyVersionItem.get(PolicyVersionItem.key(doc), f"{PolicyVersionItem.SK_PREFIX}{version}")
    except PolicyVersionItem.DoesNotExist:
        raise NotFound(f"no version {version} of {doc}") from None


def versions(doc: str) -> list[PolicyVersionItem]:
    """Every version, in the order they take effect (then publish)."""
    if not DOC.fullmatch(doc or ""):
        return []
    found = PolicyVersionItem.query(
        PolicyVersionItem.key(doc), PolicyVersionItem.sk.startswith(PolicyVersionItem.SK_PREFIX)
    )
    return sorted(found, key=lambda v: (v.effective_at, v.published_at))


def current(found: list[PolicyVersionItem], now: datetime | None = None) -> PolicyVersionItem | None:
    now = now or clock.now()
    in_effect = [v for v in found if v.effective_at <= now]
    return in_effect[-1] if in_effect else None


def all_versions() -> Iterator[PolicyVersionItem]:
    """Every version of every document, from GSI1 (doc, then version), no scan."""
    return PolicyVersionItem.listing.query(PolicyVersionItem.PARTITION)


def view(item: PolicyVersionItem) -> dict:
    return {
        "doc": item.doc,
        "version": item.version,
        "url": item.url,
        "major": bool(item.major),
        "effective_at": clock.isoformat(item.effective_at),
        "published_at": clock.isoformat(item.published_at),
        "summaries": dict(item.summaries.as_dict() if hasattr(item.summaries, "as_dict") else item.summaries),
        "text_sha256": item.text_sha256,
        "text_bytes": int(item.text_bytes) if item.text_bytes is not None else None,
        "links": {
            "self": f"{ARCHIVE_PATH.format(doc=item.doc)}/versions/{item.version}",
            "archive": ARCHIVE_PATH.format(doc=item.doc),
            "text": item.url,
        },
    }


def archive(doc: str, now: datetime | None = None) -> dict:
    found = versions(doc)
    if not found:
        raise NotFound(f"no published policy {doc}")
    now = now or clock.now()
    in_effect = current(found, now)
    return {
        "doc": doc,
        "current": view(in_effect) if in_effect else None,
        "upcoming": [view(v) for v in found if v.effective_at > now],
        "versions": [view(v) for v in found],
    }


# ------------------------------------------------------------------ telling everyone


@dataclass(frozen=True)
class Recipient:
    key: str  # stable per recipient: `ctl-<id>` or the contact's email hash
    email: str
    locale: str
    audience: str  # controller | contact
    controller_name: str | None = None
    list_name: str | None = None  # set for optional-list mail: it carries an unsubscribe link


def recipients(version: PolicyVersionItem) -> Iterator[Recipient]:
    """Who hears about this version, each address once (controllers first)."""
    seen: set[str] = set()

    def first_time(email: str) -> bool:
        normal = hashing.normalize_email(email)
        if normal in seen:
            return False
        seen.add(normal)
        return True

    if version.major:
        for controller in queries.list_controllers():
            if controller_lookup.delivery_route(controller) != DeliveryMode.INTERNAL and first_time(
                controller.contact_email
            ):
                yield Recipient(
                    f"ctl-{controller.controller_id}",
                    controller.contact_email,
                    controller.locale,
                    "controller",
                    controller_name=controller.name,
                )
        lists = (contacts.POLICY_NOTICES.name, contacts.POLICY_UPDATES.name)
    else:
        lists = (contacts.POLICY_UPDATES.name,)
    for list_name in lists:
        for member in contacts.members(list_name):
            if first_time(member.email):
                optional = None if version.major else list_name
                yield Recipient(member.email_hash, member.email, member.locale, "contact", list_name=optional)


def summary_for(version: PolicyVersionItem, locale: str) -> str:
    summaries = dict(version.summaries.as_dict() if hasattr(version.summaries, "as_dict") else version.summaries)
    return summaries.get(locale) or summaries.get(DEFAULT_LOCALE) or next(iter(summaries.values()), "")


def mail_for(version: PolicyVersionItem, recipient: Recipient) -> dict:
    """The MailQueue message for one recipient: the version and who, by id or keyed hash; the
    notifier reads the address and the summary when it sends (recipient_mail)."""
    digest = hashlib.sha256(f"{version.doc}\x00{version.version}".encode()).hexdigest()[:12]
    controller_id = recipient.key.removeprefix("ctl-") if recipient.audience == "controller" else None
    return outbox.mail_body(
        "policy",
        mail_id=f"policy-{digest}-{recipient.key[:32]}",
        doc=version.doc,
        version=version.version,
        controller_id=controller_id,
        contact=None if controller_id else recipient.key,
        list=recipient.list_name,
    )


def recipient_mail(
    doc: str,
    version: str,
    *,
    controller_id: str | None = None,
    contact: str | None = None,
    list_name: str | None = None,
) -> tuple[str, str, str, dict] | None:
    """(address, locale, template, context) of a version's mail to a controller's contact or to a
    contact (by keyed email hash), read now; None if the version, the controller or the contact is gone."""
    try:
        found = get(doc, version)
    except NotFound:
        return None
    controller_name = None
    if controller_id:
        controller = controller_lookup.get_controller(controller_id)
        if controller is None:
            return None
        address, locale, audience, controller_name = (
            controller.contact_email,
            controller.locale,
            "controller",
            controller.name,
        )
    else:
        person = contacts.get(contact or "")
        if person is None or not person.email:
            return None
        address, locale, audience = person.email, person.locale, "contact"
    context = {
        "doc": found.doc,
        "version": found.version,
        "url": found.url,
        "summary": summary_for(found, locale),
        "effective_at": clock.isoformat(found.effective_at),
        # made absolute by the notifier; the page opens in the recipient's language
        "archive_url": f"{ARCHIVE_PATH.format(doc=found.doc)}?lang={locale}",
        "audience": audience,
        "controller_name": controller_name,
    }
    return address, locale, "policy_update" if list_name else "policy_notice", context


def fan_out(version: PolicyVersionItem, *, progress: Progress | None = None) -> int:
    """Queue the version's mails (and `policy.updated` webhooks for a major one); returns how many mails."""
    batch: list[dict] = []
    total = 0
    for recipient in recipients(version):
        batch.append(mail_for(version, recipient))
        if len(batch) == 100:
            total += outbox.enqueue_mails(batch)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        total += outbox.enqueue_mails(batch)
        if progress:
            progress(len(batch))
    if version.major:
        for controller in queries.list_controllers():
            if controller_lookup.delivery_route(controller) == DeliveryMode.WEBHOOK:
                outbox.enqueue_controller_event(
                    event=WEBHOOK_EVENT,
                    controller_id=controller.controller_id,
                    doc=version.doc,
                    version=version.version,
                )
    version.update(actions=[PolicyVersionItem.recipients_queued.set(total)])
    return total


def webhook_data(doc: str, version: str) -> dict:
    """`data` of a `policy.updated` webhook event: the version as the archive shows it."""
    return view(get(doc, version))


def record_webhook(
    controller: ControllerItem, doc: str, version: str, outcome: str, *, cause: str, at: datetime | None = None
) -> None:
    """What became of a `policy.updated` webhook (delivered | failed | disabled), on the controller's
    audit trail; the email to its privacy contact is the notice either way."""
    audit.event(
        controller.pk, action=WEBHOOK_AUDIT, actor="dispatcher", at=at, cause=f"{doc}/{version}:{outcome}:{cause}"
    ).save()
