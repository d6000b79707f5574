"""Languages: choosing one, loading its catalog, formatting dates, and naming domain values.

Catalogs live in locales/<locale>/LC_MESSAGES/messages.{po,mo}; the .mo files are committed so the
Lambda layer needs no compile step (`make translations` rebuilds them after editing a .po).

Babel and Jinja2 are imported by the functions that use them, not with this module: the public
API's JSON answers only negotiate a language, and a cold start should not load either for that.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rightsdesk.platform.config import DEFAULT_LOCALE, SUPPORTED_LOCALES

if TYPE_CHECKING:
    from babel.support import Translations
    from jinja2 import Environment

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
# Catalogs merged into DOMAIN's: the notices (rightsdesk.render.notice_mail) and the operator's own data
# (rightsdesk.render.own_mail, rightsdesk.own_data.exports) keep their words apart.
EXTRA_DOMAINS = ("notices", "operator")


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, when the locale is known."""
    return message


# The words shown for domain values. Keys are the values of rightsdesk.kernel.rights / rightsdesk.kernel.status,
# kept as plain strings so this module depends on nothing but the list of locales.
REQUEST_TYPE_NAMES = {
    "access": N_("See my data"),
    "rectification": N_("Correct my data"),
    "erasure": N_("Delete my data"),
    "restriction": N_("Limit how my data is used"),
    "objection": N_("Object to how my data is used"),
    "portability": N_("Take my data elsewhere"),
    "consent_withdrawal": N_("Withdraw my consent"),
    "complaint": N_("Make a complaint"),
}

REQUEST_TYPE_HINTS = {
    "access": N_("Get a copy of the personal data held about you and learn how it is used."),
    "rectification": N_("Have inaccurate or incomplete data about you corrected."),
    "erasure": N_("Have your personal data deleted (the right to be forgotten)."),
    "restriction": N_("Have your data kept but not used, for example while a correction is checked."),
    "objection": N_("Stop uses based on legitimate interest, such as direct marketing or profiling."),
    "portability": N_("Receive the data you provided in a machine-readable format, or have it sent on."),
    "consent_withdrawal": N_("Stop uses you agreed to earlier, such as newsletters or analytics."),
    "complaint": N_("Tell the website owner about a problem with how your data was handled."),
}

STATUS_NAMES = {
    "identity_unverified": N_("Waiting for email confirmation"),
    "verified": N_("Verified"),
    "forwarded": N_("Sent to the website owner"),
    "delivered": N_("Received by the website owner"),
    "delivery_failed": N_("Delivery problem"),
    "acknowledged": N_("Acknowledged by the website owner"),
    "in_progress": N_("In progress"),
    "completed": N_("Completed"),
    "rejected": N_("Rejected"),
    "expired": N_("Expired"),
    "cancelled": N_("Cancelled"),
}

STATUS_EXPLANATIONS = {
    "identity_unverified": N_("Enter the code we emailed you to confirm that the address is yours."),
    "verified": N_("Your address is confirmed. The request is being passed to the website owner."),
    "forwarded": N_("The request has been sent to the website owner, who is responsible for answering it."),
    "delivered": N_("The website owner has received your request."),
    "delivery_failed": N_("We could not deliver the request automatically and are contacting the website owner."),
    "acknowledged": N_("The website owner has confirmed that they are handling your request."),
    "in_progress": N_("Your request is being worked on."),
    "completed": N_("Your request has been answered."),
    "rejected": N_("The request was declined. You should have received the reasons."),
    "expired": N_("The email address was not confirmed in time, so the request was closed."),
    "cancelled": N_("The request was cancelled at your wish."),
}

RELATIONSHIP_NAMES = {
    "self": N_("I am asking about my own data"),
    "guardian": N_("I am the parent or guardian of a minor whose data this is"),
    "agent": N_("I am authorised to act for the person concerned"),
}

PURPOSE_NAMES = {
    "marketing": N_("Marketing messages"),
    "newsletter": N_("Newsletter"),
    "analytics": N_("Analytics and statistics"),
    "policy_notices": N_("Notices about policy changes"),
    "chat_transcripts": N_("Keeping chat transcripts"),
    "sale_share": N_("Selling or sharing my personal data"),
    "cross_context_advertising": N_("Advertising based on my activity on other sites"),
}

# Mailing lists (rightsdesk.audience.contacts.LISTS), as a subject reads them in an export.
LIST_NAMES = {
    "policy_notices": N_("Notices about material policy changes"),
    "policy_updates": N_("Every update of our policies"),
    "newsletter": N_("Newsletter"),
    "marketing": N_("Marketing messages"),
}

LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "sl": "Slovenščina"}  # each in its own language


def normalize(locale: str | None) -> str:
    """A supported locale for any input: 'de-AT' -> 'de', unknown or empty -> the default."""
    primary = (locale or "").strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in SUPPORTED_LOCALES else DEFAULT_LOCALE


def is_supported(locale: str | None) -> bool:
    return bool(locale) and _primary(str(locale)) in SUPPORTED_LOCALES


def _primary(tag: str) -> str:
    return tag.strip().replace("_", "-").split("-")[0].lower()


def _parse_accept_language(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params:
            name, _, value = params.partition("=")
            if name.strip().lower() != "q":
                continue
            try:
                quality = float(value)
            except ValueError:
                continue  # a malformed range is ignored rather than trusted
        if tag.strip() and 0 < quality <= 1:
            ranges.append((tag.strip(), quality))
    return ranges


def negotiate(lang: str | None, accept_language: str | None) -> str:
    """`?lang=` wins if supported, else the best Accept-Language match, else the default."""
    if lang and _primary(lang) in SUPPORTED_LOCALES:
        return _primary(lang)
    # sorted() is stable: among equal q-values the header's order decides.
    for tag, _quality in sorted(_parse_accept_language(accept_language or ""), key=lambda r: -r[1]):
        if _primary(tag) in SUPPORTED_LOCALES:
            return _primary(tag)
    return DEFAULT_LOCALE


@lru_cache(maxsize=len(SUPPORTED_LOCALES))
def _load(locale: str) -> Translations:
    from babel.support import Translations  # cold start: see the module's docstring

    catalog = Translations.load(str(LOCALES_DIR), [locale], DOMAIN)
    if not isinstance(catalog, Translations):  # Babel returns NullTranslations when a file is missing
        raise FileNotFoundError(f"no compiled catalog for {locale!r} in {LOCALES_DIR}")
    for domain in EXTRA_DOMAINS:
        extra = Translations.load(str(LOCALES_DIR), [locale], domain)
        if isinstance(extra, Translations):
            catalog.merge(extra)
    return catalog


def translations(locale: str) -> Translations:
    """The catalog for a locale (cached per process); unknown locales get the default's."""
    return _load(normalize(locale))


def gettext(message: str, locale: str) -> str:
    return translations(locale).gettext(message)


def ngettext(singular: str, plural: str, n: int, locale: str) -> str:
    """The form for `n` by the locale's plural rule (Slovenian has four)."""
    return translations(locale).ngettext(singular, plural, n)


def _name(table: dict[str, str], key: object, locale: str) -> str:
    value = getattr(key, "value", key)
    return gettext(table[value], locale) if value in table else str(value)


def request_type_name(request_type: object, locale: str) -> str:
    return _name(REQUEST_TYPE_NAMES, request_type, locale)


def status_name(status: object, locale: str) -> str:
    return _name(STATUS_NAMES, status, locale)


def purpose_name(purpose: object, locale: str) -> str:
    return _name(PURPOSE_NAMES, purpose, locale)


def relationship_name(relationship: object, locale: str) -> str:
    return _name(RELATIONSHIP_NAMES, relationship, locale)


def list_name(name: object, locale: str) -> str:
    return _name(LIST_NAMES, name, locale)


def labels(locale: str) -> dict[str, dict[str, str]]:
    """Every domain value a subject may see, with its words in `locale`: the legend of an export."""
    tables = {
        "request_types": REQUEST_TYPE_NAMES,
        "statuses": STATUS_NAMES,
        "relationships": RELATIONSHIP_NAMES,
        "purposes": PURPOSE_NAMES,
        "lists": LIST_NAMES,
    }
    return {name: {key: gettext(text, locale) for key, text in table.items()} for name, table in tables.items()}


def status_explanation(status: object, locale: str) -> str:
    value = getattr(status, "value", status)
    return gettext(STATUS_EXPLANATIONS[value], locale) if value in STATUS_EXPLANATIONS else ""


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # mail contexts travel through SQS as JSON, dates as ISO 8601
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    # Naive datetimes in this code base are UTC by convention (the clock never hands out local time).
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def format_datetime(value: datetime | str, locale: str) -> str:
    """'23 December 2025 at 13:15 UTC' in the locale's words and order; always UTC, and says so."""
    from babel import dates  # cold start: see the module's docstring

    locale = normalize(locale)
    moment = _utc(value)
    date_part = dates.format_date(moment, "long", locale=locale)
    time_part = dates.format_time(moment, "short", tzinfo=timezone.utc, locale=locale) + " UTC"
    pattern = dates.get_datetime_format("long", locale=locale)
    return pattern.replace("'", "").replace("{1}", date_part).replace("{0}", time_part)


def format_date(value: datetime | str, locale: str) -> str:
    """The calendar date in UTC, e.g. '23. Dezember 2025'."""
    from babel import dates  # cold start: see the module's docstring

    return dates.format_date(_utc(value), "long", locale=normalize(locale))


# Jinja wiring. One Environment serves every locale: gettext reads `locale` from the render context
# instead of being installed per request, so concurrent renders in other locales cannot interfere.
# install() marks these as taking the context (jinja2.pass_context), so this module imports no Jinja.


def _context_locale(context) -> str:
    return normalize(context.get("locale"))


def _ctx_gettext(context, message: str) -> str:
    return translations(_context_locale(context)).gettext(message)


def _ctx_ngettext(context, singular: str, plural: str, n: int) -> str:
    return translations(_context_locale(context)).ngettext(singular, plural, n)


def _ctx_pgettext(context, msgctxt: str, message: str) -> str:
    return translations(_context_locale(context)).pgettext(msgctxt, message)


def _ctx_npgettext(context, msgctxt: str, singular: str, plural: str, n: int) -> str:
    return translations(_context_locale(context)).npgettext(msgctxt, singular, plural, n)


def _localized(function):
    from jinja2 import Undefined, pass_context  # cold start: see the module's docstring

    @pass_context
    def apply(context, value):
        # A missing value leaves a gap on the page rather than turning it into a server error.
        if value is None or isinstance(value, Undefined):
            return ""
        return function(value, _context_locale(context))

    return apply


def install(env: Environment) -> Environment:
    """Wire gettext (newstyle, whitespace-trimmed) and the localized filters into an Environment."""
    from jinja2 import pass_context  # cold start: see the module's docstring

    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=pass_context(_ctx_gettext),
        ngettext=pass_context(_ctx_ngettext),
        pgettext=pass_context(_ctx_pgettext),
        npgettext=pass_context(_ctx_npgettext),
        newstyle=True,
    )
    env.filters.update(
        datetime=_localized(format_datetime),
        date=_localized(format_date),
        status_name=_localized(status_name),
        status_explanation=_localized(status_explanation),
        relationship_name=_localized(relationship_name),
        list_name=_localized(list_name),
        request_type_name=_localized(request_type_name),
        purpose_name=_localized(purpose_name),
    )
    return env
