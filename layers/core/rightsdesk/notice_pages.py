"""The public pages of the notices (the unsubscribe confirmation), in the look of rightsdesk.web.

Templates in templates/notices/pages/ extend the request pages' _base.html; their words are in the
`notices` gettext domain (see rightsdesk.notice_mail).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote, urlencode

from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from markupsafe import Markup

from rightsdesk import i18n, unsubscribe, web
from rightsdesk.config import SUPPORTED_LOCALES

PAGES_DIR = web.PAGES_DIR.parent / "notices" / "pages"
UNSUBSCRIBE_STATES = ("confirm", "done", "used", "invalid")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(PAGES_DIR), FileSystemLoader(web.PAGES_DIR)]),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    i18n.install(env)
    # The same inline style and script as every page, so the pages' CSP hashes hold here too.
    env.globals.update(inline_css=Markup(web._asset("_style.css")), inline_js=Markup(web._asset("_enhance.js")))
    return env


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
