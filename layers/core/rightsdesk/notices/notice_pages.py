"""The public pages of the notices (the policy archive, the unsubscribe confirmation), in the look
of rightsdesk.render.web.

Templates in templates/notices/pages/ extend the request pages' _base.html; their words are in the
`notices` gettext domain (see rightsdesk.render.notice_mail).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from rightsdesk.audience import unsubscribe
from rightsdesk.notices.policies import ARCHIVE_PATH
from rightsdesk.platform.config import DEFAULT_LOCALE, SUPPORTED_LOCALES
from rightsdesk.render import i18n, web

if TYPE_CHECKING:
    from jinja2 import Environment

PAGES_DIR = web.PAGES_DIR.parent / "notices" / "pages"
UNSUBSCRIBE_STATES = ("confirm", "done", "used", "invalid")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return web.page_environment(PAGES_DIR)


def _language_links(path: str, locale: str, query: dict | None = None) -> list[dict]:
    return [
        {
            "code": code,
            "name": i18n.LANGUAGE_NAMES[code],
            "href": path + "?" + urlencode({**(query or {}), "lang": code}),
            "current": code == locale,
        }
        for code in SUPPORTED_LOCALES
    ]


def _version_for_page(view: dict, locale: str) -> dict:
    """A version as policies.view gives it, with its summary in the reader's language (else English)
    and its link keeping that language."""
    summaries = view.get("summaries") or {}
    summary_locale = (
        locale
        if summaries.get(locale)
        else DEFAULT_LOCALE
        if summaries.get(DEFAULT_LOCALE)
        else next(iter(summaries), locale)
    )
    summary = summaries.get(summary_locale, "")
    return {
        **view,
        "href": web.with_language(view["links"]["self"], locale),
        "summary_locale": summary_locale,
        "paragraphs": [part.strip() for part in summary.replace("\r\n", "\n").split("\n\n") if part.strip()],
    }


def policy_archive_page(archive: dict, locale: str) -> str:
    """GET /v1/policies/{doc} for a browser: what is in force, what comes, every version."""
    locale = i18n.normalize(locale)
    path = ARCHIVE_PATH.format(doc=quote(archive["doc"], safe=""))
    return (
        _environment()
        .get_template("policy_archive.html")
        .render(
            locale=locale,
            doc=archive["doc"],
            current=_version_for_page(archive["current"], locale) if archive.get("current") else None,
            upcoming=[_version_for_page(v, locale) for v in archive.get("upcoming") or []],
            versions=[_version_for_page(v, locale) for v in archive["versions"]],
            language_links=_language_links(path, locale),
        )
    )


def policy_version_page(view: dict, locale: str) -> str:
    """GET /v1/policies/{doc}/versions/{version} for a browser."""
    locale = i18n.normalize(locale)
    version = _version_for_page(view, locale)
    return (
        _environment()
        .get_template("policy_version.html")
        .render(
            locale=locale,
            version=version,
            archive_href=web.with_language(view["links"]["archive"], locale),
            language_links=_language_links(view["links"]["self"], locale),
        )
    )


def unsubscribe_page(state: str, locale: str, token: str | None = None, list_name: str | None = None) -> str:
    """The page of one state of an unsubscribe link; `list_name` words it for that list."""
    if state not in UNSUBSCRIBE_STATES:
        raise ValueError(f"unknown unsubscribe page state {state!r}")
    locale = i18n.normalize(locale)
    # The form's action carries the language too, so the answer to the POST is in it.
    here = (
        unsubscribe.PATH
        + "?"
        + urlencode({**({"token": token} if token and state == "confirm" else {}), "lang": locale})
    )
    links = [
        {
            "code": code,
            "name": i18n.LANGUAGE_NAMES[code],
            "href": unsubscribe.PATH + "?" + urlencode({**({"token": token} if token else {}), "lang": code}),
            "current": code == locale,
        }
        for code in SUPPORTED_LOCALES
    ]
    return (
        _environment()
        .get_template("unsubscribe.html")
        .render(locale=locale, state=state, action=here, language_links=links, list_name=list_name)
    )
