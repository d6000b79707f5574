"""Emails to data subjects: a subject line, an HTML part and a plain-text part, in their language.

Each mail is a pair of templates in templates/mail/: <name>.txt holds `{% block subject %}` and the
text body, <name>.html the HTML body. The Notifier sends them; this module only renders.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from jinja2 import Environment, FileSystemLoader, Template, select_autoescape

from rightsdesk import i18n
from rightsdesk.config import settings

MAIL_DIR = Path(__file__).parent / "templates" / "mail"

# The context each template needs; a missing key is a bug in the caller, so it fails loudly.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "verification_code": ("code", "verify_url", "request_type", "expires_minutes"),
    "request_verified": ("request_type", "due_at", "status_url"),
    "status_changed": ("request_type", "status", "status_url"),
    # to a controller's privacy contact (rightsdesk.payloads), in the controller's locale
    "request_forwarded": ("controller_name", "request_id", "request_type", "due_at", "request_url", "purge_after_minutes"),
    "delivery_failed": ("controller_name", "request_id", "request_type", "due_at", "request_url", "attempts", "cause"),
    "request_notice": ("controller_name", "request_id", "request_type", "due_at", "request_url", "notice"),
}
URL_KEYS = ("verify_url", "status_url", "request_url")
WRAP = 72


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(MAIL_DIR),
        # The text part must not be HTML-escaped; everything else is.
        autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default=True),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return i18n.install(env)


@lru_cache(maxsize=None)
def _templates(name: str) -> tuple[Template, Template]:
    env = _environment()
    return env.get_template(f"{name}.txt"), env.get_template(f"{name}.html")


def absolute_url(url: str) -> str:
    """Links in mail must work outside the site: relative ones are resolved against PUBLIC_BASE_URL."""
    if urlsplit(url).scheme in ("http", "https"):
        return url
    base = settings().public_base_url
    if not base:
        raise ValueError(f"cannot make {url!r} absolute: PUBLIC_BASE_URL is not set")
    return urljoin(base + "/", url.lstrip("/"))


def _tidy_text(text: str) -> str:
    """Wrap prose at 72 columns (RFC 3676 style); links and indented lines stay whole."""
    lines: list[str] = []
    for line in text.strip().splitlines():
        line = line.rstrip()
        if line == "--":
            line = "-- "  # the signature separator keeps its trailing space
        if len(line) <= WRAP or line.startswith(" ") or "://" in line:
            lines.append(line)
        else:
            lines.extend(textwrap.wrap(line, WRAP, break_long_words=False, break_on_hyphens=False))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def render(template: str, locale: str, context: dict) -> RenderedMail:
    if template not in TEMPLATES:
        raise ValueError(f"unknown mail template {template!r}; expected one of {tuple(TEMPLATES)}")
    missing = [key for key in TEMPLATES[template] if context.get(key) in (None, "")]
    if missing:
        raise ValueError(f"mail {template!r} needs {', '.join(missing)}")
    variables = dict(context, locale=i18n.normalize(locale))
    for key in URL_KEYS:
        if variables.get(key):
            variables[key] = absolute_url(str(variables[key]))
    text_template, html_template = _templates(template)
    subject = "".join(text_template.blocks["subject"](text_template.new_context(variables)))
    subject = " ".join(subject.split())  # one line: a newline in a header would be an injection
    return RenderedMail(
        subject=subject,
        html=html_template.render(variables, subject=subject),
        text=_tidy_text(text_template.render(variables)),
    )
