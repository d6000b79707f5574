"""Mails about the operator's own data: answers to requests the operator carries out
itself, and its newsletter. Rendered like rightsdesk.render.mail (subject block, HTML and text parts,
en/de/sl) from templates/operator/mail/, on the request mails' _base layout.

Their words live in a gettext domain of their own, `operator` (locales/*/LC_MESSAGES/operator.po,
extracted with babel-operator.cfg), merged into each locale's catalog by rightsdesk.render.i18n.
"""

from __future__ import annotations

from rightsdesk.render import TEMPLATES_DIR
from rightsdesk.render.mail import MAIL_DIR, MailSet, RenderedMail, absolute_url  # noqa: F401 (re-exported)
from rightsdesk.render.notice_mail import paragraphs

OWN_DIR = TEMPLATES_DIR / "operator" / "mail"

# The context each mail needs; a missing key is the caller's bug and fails loudly.
TEMPLATES: dict[str, tuple[str, ...]] = {
    # rectification and complaints wait for a person; a complaint names the supervisory authority
    "own_request_received": ("request_id", "request_type", "due_at"),
    # the answer is overdue (rightsdesk.routing.deadline_watch): names the supervisory authority (Art. 77)
    "own_request_overdue": ("request_id", "request_type", "due_at"),
    # outcome: completed | rejected | extended
    "own_request_answered": ("request_id", "request_type", "outcome"),
    "newsletter": ("subject", "body", "unsubscribe_url"),
    # an account unused for its class's warning period (rightsdesk.lifecycle): when it goes, how to keep it
    "account_inactivity_warning": ("account_id", "last_active_day", "erase_at"),
}
URL_KEYS = ("unsubscribe_url", "authority_url", "keep_url")
# Optional-list mail: a restriction, objection, withdrawal or suppression stops it (contacts.may_receive).
LIST_MAIL = frozenset({"newsletter"})


# Our templates first; the request mails' _base.html/_base.txt give the common look.
OWN = MailSet("mail", (OWN_DIR, MAIL_DIR), TEMPLATES, URL_KEYS, {"paragraphs": paragraphs})
render = OWN.render
