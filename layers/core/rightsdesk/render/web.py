"""Server-rendered pages for data subjects: the request form and what follows it.

Pages are complete HTML5 documents that work without JavaScript. Everything they need is inline
(no external assets, fonts or trackers); `content_security_policy()` pins the inline style and
script by hash so a handler can send a strict CSP header.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from markupsafe import Markup

from rightsdesk.kernel.clock import isoformat, parse_iso
from rightsdesk.kernel.retention import Rule, keep_for
from rightsdesk.kernel.rights import PURPOSES, RELATIONSHIPS, REQUEST_TYPES
from rightsdesk.platform.config import SUPPORTED_LOCALES
from rightsdesk.render import TEMPLATES_DIR, i18n
from rightsdesk.render.i18n import N_

if TYPE_CHECKING:
    from jinja2 import Environment

PAGES_DIR = TEMPLATES_DIR / "pages"
PAGES = ("form", "verify", "verified", "status", "status_lookup", "message")

# The GET routes of the public API that show pages. Some pages are answers to a POST, so a
# query-only "?lang=" link would re-request a POST-only path: language links name these instead.
FORM_PATH = "/"
VERIFY_PATH = "/verify/{request_id}"
STATUS_PATH = "/status/{request_id}"

# Form fields in page order: the first one with an error gets the focus, and the summary links to it.
FORM_ANCHORS = {
    "site": "site",
    "type": "type-" + REQUEST_TYPES[0],
    "purposes": "purposes-" + PURPOSES[0],
    "details": "details",
    "relationship": "relationship-" + RELATIONSHIPS[0],
    "email": "email",
    "name": "name",
}

# (field, code) first, then the code alone: "required" means something different for each field.
FORM_ERRORS = {
    ("site", "required"): N_("Enter the website where you used the chat."),
    ("site", "unknown_site"): N_("We do not know this website. Check the address or the site key."),
    ("site", "site_unavailable"): N_(
        "This website does not take requests through this service at the moment. Please contact the website directly."
    ),
    ("type", "required"): N_("Choose what you would like to do."),
    ("type", "invalid_choice"): N_("Choose one of the listed options."),
    ("email", "required"): N_("Enter your email address."),
    ("email", "invalid_email"): N_("Enter an email address in the form name@example.com."),
    ("relationship", "invalid_choice"): N_("Choose whose data this is about."),
    ("purposes", "purposes_required"): N_("Choose at least one use for which you withdraw consent."),
    ("purposes", "invalid_choice"): N_("Choose only from the listed uses."),
    "required": N_("This field is required."),
    "invalid_email": N_("Enter an email address in the form name@example.com."),
    "too_long": N_("This is too long. Please shorten it."),
    "unknown_site": N_("We do not know this website. Check the address or the site key."),
    "site_unavailable": N_(
        "This website does not take requests through this service at the moment. Please contact the website directly."
    ),
    "invalid_choice": N_("Choose one of the listed options."),
    "purposes_required": N_("Choose at least one use for which you withdraw consent."),
    "invalid_format": N_("This entry is not in a valid format."),
    "invalid_input": N_("Please check this entry."),
    "invalid_characters": N_(
        "Remove line breaks, control characters and invisible formatting characters from this entry."
    ),
    "rate_limited": N_("Too many requests were sent from your network. Please wait a minute and try again."),
}

VERIFY_ERRORS = {
    "invalid_code": N_("This code is not correct. Check the email we sent you and try again."),
    "code_expired": N_("This code has expired. Please send your request again to get a new code."),
    "too_many_attempts": N_("Too many wrong codes were entered. For your safety, please send your request again."),
    "not_awaiting_verification": N_(
        "This request does not need a code: it has already been confirmed, has expired or was cancelled."
    ),
}
CODE_ENTRY_ERRORS = frozenset({"invalid_code"})

# Keys a handler may pass as `title` or `message` to the message page instead of its own text.
MESSAGES = {
    "not_found": (
        N_("Request not found"),
        N_(
            "We could not find this request. The link may be incomplete, or the request was deleted at the end of its retention period."
        ),
    ),
    "link_invalid": (
        N_("This link is no longer valid"),
        N_("The link has expired or has already been used. You can start a new request at any time."),
    ),
    "unauthorized": (N_("Access denied"), N_("This link or token does not give access to this request.")),
    "bad_request": (N_("Something is wrong with this request"), N_("Please go back to the form and try again.")),
    "too_many_requests": (N_("Too many requests"), N_("Please wait a moment and try again.")),
    "server_error": (N_("Something went wrong"), N_("Please try again in a few minutes.")),
    "cancelled": (N_("Request cancelled"), N_("Your request has been cancelled. You can start a new one at any time.")),
    "page_not_found": (
        N_("Page not found"),
        N_("There is no page at this address. Check the link, or start from the request form."),
    ),
}


def page_environment(*folders: Path, **extra_globals) -> Environment:
    """The Environment of pages: templates in `folders` first, then PAGES_DIR (_base.html and the
    rest), with this module's inline style and script so the hashes of content_security_policy()
    hold on every page. `extra_globals` are added for the templates."""
    # Cold start: Jinja is imported by the first render, not with this module.
    from jinja2 import Environment, FileSystemLoader

    env = Environment(
        loader=FileSystemLoader([*folders, PAGES_DIR]),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,  # templates ship with the layer; never stat them per render
        trim_blocks=True,
        lstrip_blocks=True,
    )
    i18n.install(env)
    env.globals.update(
        inline_css=Markup(_asset("_style.css")), inline_js=Markup(_asset("_enhance.js")), **extra_globals
    )
    return env


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return page_environment()


@cache
def _asset(name: str) -> str:
    return (PAGES_DIR / name).read_text(encoding="utf-8").strip()


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def content_security_policy() -> str:
    """A CSP that allows exactly the inline style and script these pages carry, and nothing else."""
    return "; ".join(
        (
            "default-src 'none'",
            f"style-src {_sha256(_asset('_style.css'))}",
            f"script-src {_sha256(_asset('_enhance.js'))}",
            "img-src 'self' data:",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def render_page(page: str, locale: str, **context) -> str:
    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}; expected one of {PAGES}")
    locale = i18n.normalize(locale)
    prepared = _PREPARE[page](locale, dict(context))
    prepared["locale"] = locale
    path, query = _here(page, prepared)
    prepared["language_links"] = _language_links(locale, path, query)
    return _environment().get_template(f"{page}.html").render(prepared)


def _here(page: str, ctx: dict) -> tuple[str, dict]:
    """Where this page can be fetched again with GET, keeping what it needs (a site, a code, a token)."""
    request_id = quote(str(ctx.get("request_id") or ""), safe="")
    if page == "verify" and request_id:
        return VERIFY_PATH.format(request_id=request_id), {"code": ctx.get("code")}
    if page == "status_lookup" and request_id:
        return STATUS_PATH.format(request_id=request_id), {}
    if page == "status" and request_id:
        return STATUS_PATH.format(request_id=request_id), {"token": ctx.get("cancel_token")}
    if page == "verified" and ctx.get("status_url"):
        # The confirmation is shown once; in another language the status page says the same.
        url = urlsplit(ctx["status_url"])
        return url.path, dict(parse_qsl(url.query))
    if page == "form":
        return FORM_PATH, {"site": (ctx.get("values") or {}).get("site") or ctx.get("site")}
    return FORM_PATH, {}


def _language_links(locale: str, path: str, query: dict) -> list[dict]:
    kept = {k: v for k, v in query.items() if v and k != "lang"}
    return [
        {
            "code": code,
            "name": i18n.LANGUAGE_NAMES[code],
            "href": path + "?" + urlencode({**kept, "lang": code}),
            "current": code == locale,
        }
        for code in SUPPORTED_LOCALES
    ]


def _t(message: str, locale: str) -> str:
    return i18n.gettext(message, locale)


def _when(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_iso(value)


def _list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def _prepare_form(locale: str, ctx: dict) -> dict:
    values = dict(ctx.get("values") or {})
    errors = dict(ctx.get("errors") or {})
    messages = {}
    # Fields in page order first so the summary reads top to bottom, then anything else.
    for field in [f for f in FORM_ANCHORS if f in errors] + [f for f in errors if f not in FORM_ANCHORS]:
        code = errors[field]
        msgid = FORM_ERRORS.get((field, code)) or FORM_ERRORS.get(code) or FORM_ERRORS["invalid_input"]
        messages[field] = _t(msgid, locale)
    ctx.update(
        values=values,
        site=ctx.get("site"),
        authority=ctx.get("authority"),
        error_messages=messages,
        first_error=next(iter(f for f in messages if f in FORM_ANCHORS), None),
        anchors=FORM_ANCHORS,
        chosen_purposes=_list(values.get("purposes")),
        chosen_relationship=values.get("relationship") or "self",
        unverified_hours=int(keep_for(Rule.UNVERIFIED_REQUEST).total_seconds() // 3600),
        request_types=[
            {
                "value": t,
                "name": _t(i18n.REQUEST_TYPE_NAMES[t], locale),
                "hint": _t(i18n.REQUEST_TYPE_HINTS[t], locale),
            }
            for t in REQUEST_TYPES
        ],
        relationships=[{"value": r, "name": _t(i18n.RELATIONSHIP_NAMES[r], locale)} for r in RELATIONSHIPS],
        purposes=[{"value": p, "name": _t(i18n.PURPOSE_NAMES[p], locale)} for p in PURPOSES],
    )
    return ctx


def _prepare_verify(locale: str, ctx: dict) -> dict:
    error = ctx.get("error")
    ctx.update(
        code=ctx.get("code"),
        error=error,
        attempts_left=ctx.get("attempts_left"),
        error_message=_t(VERIFY_ERRORS.get(error, VERIFY_ERRORS["invalid_code"]), locale) if error else "",
        can_enter_code=not error or error in CODE_ENTRY_ERRORS,
        code_minutes=int(keep_for(Rule.VERIFICATION_CODE).total_seconds() // 60),
    )
    return ctx


def with_language(url: str, locale: str) -> str:
    """`url` with `lang=` set: a link out of a page keeps the subject's language."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"] + [("lang", locale)]
    return parts._replace(query=urlencode(query)).geturl()


def _prepare_verified(locale: str, ctx: dict) -> dict:
    due = _when(ctx.get("due_at"))
    ctx.update(due_at=due, due_iso=isoformat(due) if due else "")
    if ctx.get("status_url"):
        ctx["status_url"] = with_language(ctx["status_url"], locale)
    return ctx


def _prepare_status(locale: str, ctx: dict) -> dict:
    due = _when(ctx.get("due_at"))
    timeline = []
    for event in ctx.get("timeline") or []:
        at = _when(event.get("at"))
        timeline.append({"at": at, "iso": isoformat(at) if at else "", "status": event.get("status")})
    ctx.update(
        due_at=due,
        due_iso=isoformat(due) if due else "",
        timeline=timeline,
        can_cancel=bool(ctx.get("can_cancel")),
        cancel_token=ctx.get("cancel_token"),
    )
    return ctx


def _prepare_message(locale: str, ctx: dict) -> dict:
    title, message = ctx.get("title"), ctx.get("message")
    # A known key becomes localized text; anything else is shown as given (and escaped).
    if title in MESSAGES:
        title = _t(MESSAGES[title][0], locale)
    if message in MESSAGES:
        if not title:
            title = _t(MESSAGES[message][0], locale)
        message = _t(MESSAGES[message][1], locale)
    status_code = ctx.get("status_code")
    ctx.update(
        title=title or _t(MESSAGES["server_error"][0], locale),
        message=message or "",
        status_code=status_code if isinstance(status_code, int) and status_code >= 400 else None,
    )
    return ctx


_PREPARE = {
    "form": _prepare_form,
    "verify": _prepare_verify,
    "verified": _prepare_verified,
    "status": _prepare_status,
    "status_lookup": lambda locale, ctx: ctx,
    "message": _prepare_message,
}
