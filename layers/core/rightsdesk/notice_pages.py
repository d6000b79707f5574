"""The public pages of the notices (the unsubscribe confirmation), in the look of rightsdesk.web.

Templates in templates/notices/pages/ extend the request pages' _base.html; their words are in the
`notices` gettext domain (see rightsdesk.notice_mail).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from rightsdesk import i18n, unsubscribe, web
from rightsdesk.config import SUPPORTED_LOCALES

if TYPE_CHECKING:
    from jinja2 import Environment

PAGES_DIR = web.PAGES_DIR.parent / "notices" / "pages"
UNSUBSCRIBE_STATES = ("confirm", "done", "used", "invalid")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return web.page_environment(PAGES_DIR)


def unsubscribe_page(state: str, locale: str, token: str | None = None, list_name: str | None = None) -> str:
    """The page of one state of an unsubscribe link; `list_name` words it for that list."""
    if state not in UNSUBSCRIBE_STATES:
        raise ValueError(f"unknown unsubscribe page state {state!r}")
    locale = i18n.normalize(locale)
    here = unsubscribe.PATH + (f"?token={quote(token, safe='')}" if token and state == "confirm" else "")
    links = [
        {
            "code": code,
            "name": i18n.LANGUAGE_NAMES[code],
            "href": unsubscribe.PATH + "?" + urlencode({**({"token": token} if token else {}), "lang": code}),
            "current": code == locale,
        }
        for code in SUPPORTED_LOCALES
    ]
    return _environment().get_template("unsubscribe.html").render(
        locale=locale, state=state, action=here, language_links=links, list_name=list_name
    )
