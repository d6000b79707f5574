"""Breach, policy and operator notices: rendered like rightsdesk.render.mail (subject block, HTML and text
parts, en/de/sl), from templates/notices/.

Their words live in a gettext domain of their own, `notices` (locales/*/LC_MESSAGES/notices.po,
extracted with babel-notices.cfg), merged into each locale's catalog by rightsdesk.render.i18n: the
request mails and pages keep their catalog to themselves, and neither side's extraction touches
the other's entries.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from rightsdesk.render import TEMPLATES_DIR
from rightsdesk.render.mail import MAIL_DIR, MailSet, RenderedMail, absolute_url  # noqa: F401 (re-exported)

NOTICES_DIR = TEMPLATES_DIR / "notices"

# The context each notice needs; a missing key is the caller's bug and fails loudly.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "breach_controller": ("controller_name", "incident_id", "detected_at", "summary", "categories", "contact"),
    "breach_subject": ("controller_names", "incident_id", "detected_at", "summary", "categories", "contact"),
    "policy_notice": ("audience", "doc", "version", "url", "summary", "effective_at", "archive_url"),
    "policy_update": ("doc", "version", "url", "summary", "effective_at", "archive_url", "unsubscribe_url"),
    "breach_deadline_warning": ("incident_id", "due_at"),
    # to the operators: requests a week overdue (rightsdesk.routing.deadline_watch), ids and dates only
    "requests_overdue_digest": ("requests", "days"),
}
URL_KEYS = ("url", "archive_url", "unsubscribe_url")
# Notices we start, to many: a bounce or complaint suppresses them (rightsdesk.audience.suppression).
# The operators' own warning is not one of them.
SUPPRESSIBLE = frozenset({"breach_controller", "breach_subject", "policy_notice", "policy_update"})


def paragraphs(text: str | None) -> Markup:
    """Operator-typed text as HTML paragraphs: blank lines part them, line breaks stay; all escaped."""
    blocks = [block for block in re.split(r"\n\s*\n", (text or "").strip()) if block.strip()]
    return Markup("").join(
        Markup('<p style="margin:0 0 1rem;">{}</p>').format(
            Markup("<br>").join(escape(line) for line in block.splitlines())
        )
        for block in blocks
    )


# Their own templates first; the request mails' folder gives the shared layout (_layout.html).
NOTICES = MailSet("notice", (NOTICES_DIR, MAIL_DIR), TEMPLATES, URL_KEYS, {"paragraphs": paragraphs})
render = NOTICES.render
