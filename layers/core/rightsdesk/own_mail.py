"""Mails about the operator's own data (issue 6): answers to requests the operator carries out
itself, and its newsletter. Rendered like rightsdesk.mail (subject block, HTML and text parts,
en/de/sl) from templates/operator/mail/, on the request mails' _base layout.

Their words live in a gettext domain of their own, `operator` (locales/*/LC_MESSAGES/operator.po,
extracted with babel-operator.cfg), merged into each locale's catalog by rightsdesk.i18n.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, Template, select_autoescape

from rightsdesk import i18n
from rightsdesk.mail import MAIL_DIR, RenderedMail, _tidy_text, absolute_url
from rightsdesk.notice_mail import paragraphs

OWN_DIR = Path(__file__).parent / "templates" / "operator" / "mail"

# The context each mail needs; a missing key is the caller's bug and fails loudly.
TEMPLATES: dict[str, tuple[str, ...]] = {
    # rectification and complaints wait for a person; a complaint names the supervisory authority
    "own_request_received": ("request_id", "request_type", "due_at"),
    # outcome: completed | rejected | extended
    "own_request_answered": ("request_id", "request_type", "outcome"),
    "newsletter": ("subject", "body", "unsubscribe_url"),
}
URL_KEYS = ("unsubscribe_url", "authority_url")
# Optional-list mail: a restriction, objection, withdrawal or suppression stops it (contacts.may_receive).
LIST_MAIL = frozenset({"newsletter"})


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        # Our templates first; the request mails' _base.html/_base.txt give the common look.
        loader=ChoiceLoader([FileSystemLoader(OWN_DIR), FileSystemLoader(MAIL_DIR)]),
        autoescape=select_autoescape(enabled_extensions=("html",), disabled_extensions=("txt",), default=True),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = paragraphs
    return i18n.install(env)


@lru_cache(maxsize=None)
def _templates(name: str) -> tuple[Template, Template]:
    env = _environment()
    return env.get_template(f"{name}.txt"), env.get_template(f"{name}.html")


def render(template: str, locale: str, context: dict) -> RenderedMail:
    if template not in TEMPLATES:
        raise ValueError(f"unknown mail {template!r}; expected one of {tuple(TEMPLATES)}")
    missing = [key for key in TEMPLATES[template] if context.get(key) in (None, "", [])]
    if missing:
        raise ValueError(f"mail {template!r} needs {', '.join(missing)}")
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
