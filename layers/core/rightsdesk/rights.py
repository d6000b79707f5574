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


REQUEST_TYPES = tuple(t.value for t in RequestType)
RELATIONSHIPS = tuple(r.value for r in Relationship)
PURPOSES = tuple(p.value for p in Purpose)
