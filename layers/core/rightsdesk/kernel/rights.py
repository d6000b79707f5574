"""What a subject can ask for, and on whose behalf."""

from __future__ import annotations

from enum import Enum


class RequestType(str, Enum):
    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    PORTABILITY = "portability"
    CONSENT_WITHDRAWAL = "consent_withdrawal"
    COMPLAINT = "complaint"


class Relationship(str, Enum):
    SELF = "self"
    GUARDIAN = "guardian"  # a parent or guardian acting for a minor
    AGENT = "agent"  # an authorised representative


class Purpose(str, Enum):
    MARKETING = "marketing"
    NEWSLETTER = "newsletter"
    ANALYTICS = "analytics"
    POLICY_NOTICES = "policy_notices"
    CHAT_TRANSCRIPTS = "chat_transcripts"
    # The uses a Global Privacy Control signal opts out of (CCPA/CPRA: "sale" and "sharing", the
    # latter being cross-context behavioral advertising); rightsdesk.kernel.gpc.PURPOSES names them.
    SALE_SHARE = "sale_share"
    CROSS_CONTEXT_ADVERTISING = "cross_context_advertising"


# Which requests count towards the once-a-year free request (Art. 12(5): a controller may charge
# for or refuse requests that are excessive, "in particular because of their repetitive
# character"; rightsdesk.intake.subjects flags them `excessive`). Never these: withdrawing consent must be
# as easy as giving it (Art. 7(3)); an objection to direct marketing is absolute (Art. 21(3)) and
# the form does not tell the kinds of objection apart; a complaint names the supervisory authority
# and costs nothing. They are neither counted nor flagged. Every RequestType has its row.
COUNTS_TOWARDS_FREE_REQUEST: dict[RequestType, bool] = {
    RequestType.ACCESS: True,
    RequestType.RECTIFICATION: True,
    RequestType.ERASURE: True,
    RequestType.RESTRICTION: True,
    RequestType.OBJECTION: False,
    RequestType.PORTABILITY: True,
    RequestType.CONSENT_WITHDRAWAL: False,
    RequestType.COMPLAINT: False,
}


def counts_towards_free_request(request_type: RequestType | str) -> bool:
    return COUNTS_TOWARDS_FREE_REQUEST[RequestType(request_type)]


REQUEST_TYPES = tuple(t.value for t in RequestType)
RELATIONSHIPS = tuple(r.value for r in Relationship)
PURPOSES = tuple(p.value for p in Purpose)
