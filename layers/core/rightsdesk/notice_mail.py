"""Breach, policy and operator notices: rendered like rightsdesk.mail (subject block, HTML and text
parts, en/de/sl), from templates/notices/.

Their words live in a gettext domain of their own, `notices` (locales/*/LC_MESSAGES/notices.po,
extracted with babel-notices.cfg), merged into each locale's catalog by rightsdesk.i18n: the
request mails and pages keep their catalog to themselves, and neither side's extraction touches
the other's entries.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, Template, select_autoescape
from markupsafe import Markup, escape

from rightsdesk import i18n
from rightsdesk.mail import RenderedMail, _tidy_text, absolute_url

NOTICES_DIR = Path(__file__).parent / "templates" / "notices"

# The context each notice needs; a missing key is the caller's bug and fails loudly.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "breach_controller": ("controller_name", "incident_id", "detected_at", "summary", "categories", "contact"),
    "breach_subject": ("controller_names", "incident_id", "detected_at", "summary", "categories", "contact"),
    "policy_notice": ("audience", "doc", "version", "url", "summary", "effective_at", "archive_url"),
    "policy_update": ("doc", "version", "url", "summary", "effective_at", "archive_url", "unsubscribe_url"),
    "breach_deadline_warning": ("incident_id", "due_at"),
}
URL_KEYS = ("url", "archive_url", "unsubscribe_url")
# Notices we start, to many: a bounce or complaint suppresses them (rightsdesk.suppression).
# The operators' own warning is not one of them.
SUPPRESSIBLE = frozenset({"breach_controller", "breach_subject", "policy_notice", "policy_update"})


def paragraphs(text: str | None) -> Markup:
    """Operator-typed text as HTML paragraphs: blank lines part them, line breaks stay; all escaped."""
    blocks = [block for block in re.split(r"\n\s*\n", (text or "").strip()) if block.strip()]
    return Markup("").join(
        Markup('<p style="margin:0 0 1rem;">{}</p>').format(Markup("<br>").join(escape(line) for line in block.splitlines()))
        for block in blocks
    )


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(NOTICES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default=True),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = paragraphs
    return i18n.install(env)


@cache
def _templates(name: str) -> tuple[Template, Template]:
    env = _environment()
    return env.get_template(f"{name}.txt"), env.get_template(f"{name}.html")


def render(template: str, locale: str, context: dict) -> RenderedMail:
    if template not in TEMPLATES:
        raise ValueError(f"unknown notice {template!r}; expected one of {tuple(TEMPLATES)}")
    missing = [key for key in TEMPLATES[template] if context.get(key) in (None, "", [])]
    if missing:
        raise ValueError(f"notice {template!r} needs {', '.join(missing)}")
    variables = dict(context, locale=i18n.normalize(locale))
    for key in URL_KEYS:
        if variables.get(key):
            variables[key] = absolute_url(str(variables[key]))
    text_template, html_template = _templates(template)
    subject = " ".join("".join(text_template.blocks["subject"](text_template.new_context(variables))).split())
    return RenderedMail(
        subject=subject,
        html=html_template.render(variables, subject=subject),
        text=_tidy_text(text_template.render(variables)),
    )
