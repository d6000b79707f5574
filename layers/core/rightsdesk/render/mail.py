"""Emails to data subjects: a subject line, an HTML part and a plain-text part, in their language.

Each mail is a pair of templates in templates/mail/: <name>.txt holds `{% block subject %}` and the
text body, <name>.html the HTML body. The Notifier sends them; this module only renders.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from rightsdesk.platform.config import settings
from rightsdesk.render import TEMPLATES_DIR, i18n

if TYPE_CHECKING:
    from jinja2 import Environment, Template

MAIL_DIR = TEMPLATES_DIR / "mail"

# The context each template needs; a missing key is a bug in the caller, so it fails loudly.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "verification_code": ("code", "verify_url", "request_type", "expires_minutes"),
    "request_verified": ("request_type", "due_at", "status_url"),
    "status_changed": ("request_type", "status", "status_url"),
    # an extension of the due date (Art. 12(3)): the new date and the controller's reason
    "due_extended": ("request_type", "due_at", "reason", "status_url"),
    # to a controller's privacy contact (rightsdesk.routing.payloads), in the controller's locale
    "request_forwarded": (
        "controller_name",
        "request_id",
        "request_type",
        "due_at",
        "request_url",
        "purge_after_minutes",
    ),
    "delivery_failed": ("controller_name", "request_id", "request_type", "due_at", "request_url", "attempts", "cause"),
    "request_notice": ("controller_name", "request_id", "request_type", "due_at", "request_url", "notice"),
    "webhook_disabled": ("controller_name", "controller_id", "requests_url"),
}
URL_KEYS = ("verify_url", "status_url", "request_url", "requests_url")
WRAP = 72


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    html: str
    text: str


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


class MailSet:
    """A folder of mails rendered alike: this module's, and the notices' and operator's own
    (rightsdesk.render.notice_mail, rightsdesk.render.own_mail).

    `folders` are searched in order (a set's own templates first, then the layouts it shares);
    `required` names each template and the context it needs; `url_keys` are made absolute;
    `filters` are added to the Environment. `kind` names the set's mails in errors.
    """

    def __init__(
        self,
        kind: str,
        folders: tuple[Path, ...],
        required: dict[str, tuple[str, ...]],
        url_keys: tuple[str, ...],
        filters: dict[str, Callable] | None = None,
    ) -> None:
        self.kind = kind
        self.folders = folders
        self.required = required
        self.url_keys = url_keys
        self.filters = filters or {}
        self.environment = lru_cache(maxsize=1)(self._environment)
        self.templates = lru_cache(maxsize=None)(self._templates)

    def _environment(self) -> Environment:
        # Cold start: Jinja is imported by the first render, not with this module.
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        env = Environment(
            loader=FileSystemLoader(self.folders),
            # The text part must not be HTML-escaped; everything else is.
            autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default=True),
            extensions=["jinja2.ext.i18n"],
            auto_reload=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(self.filters)
        return i18n.install(env)

    def _templates(self, name: str) -> tuple[Template, Template]:
        env = self.environment()
        return env.get_template(f"{name}.txt"), env.get_template(f"{name}.html")

    def render(self, template: str, locale: str, context: dict) -> RenderedMail:
        if template not in self.required:
            raise ValueError(f"unknown {self.kind} {template!r}; expected one of {tuple(self.required)}")
        missing = [key for key in self.required[template] if context.get(key) in (None, "", [])]
        if missing:
            raise ValueError(f"{self.kind} {template!r} needs {', '.join(missing)}")
        variables = dict(context, locale=i18n.normalize(locale))
        for key in self.url_keys:
            if variables.get(key):
                variables[key] = absolute_url(str(variables[key]))
        text_template, html_template = self.templates(template)
        subject = "".join(text_template.blocks["subject"](text_template.new_context(variables)))
        subject = " ".join(subject.split())  # one line: a newline in a header would be an injection
        return RenderedMail(
            subject=subject,
            html=html_template.render(variables, subject=subject),
            text=_tidy_text(text_template.render(variables)),
        )


def quoted(value: str | None, prefix: str = "> ") -> str:
    """A field a person typed, for a plain-text mail: every line behind `prefix`, so no line of it
    starts where the mail's own lines ("Email: ...") do (rightsdesk.kernel.free_text keeps other breaks out)."""
    if not value:
        return ""
    return "\n".join(prefix + line for line in str(value).replace("\r\n", "\n").split("\n"))


MAILS = MailSet("mail", (MAIL_DIR,), TEMPLATES, URL_KEYS, filters={"quoted": quoted})
render = MAILS.render
_environment = MAILS.environment
