"""What a data subject sends: the request form and the verification code, as pydantic models.

The public API validates its bodies with them (and publishes them in its OpenAPI document); the
rules they apply to a field (an address, a site key, free text) live in rightsdesk.kernel.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from rightsdesk.kernel import free_text, identifiers
from rightsdesk.kernel.form_bodies import FormFriendly
from rightsdesk.kernel.identifiers import EMAIL_PATTERN, MAX_EMAIL_LENGTH
from rightsdesk.kernel.rights import Purpose, Relationship, RequestType


def _no_purposes() -> list[Purpose]:
    # Not `default_factory=list`: pydantic inspects the factory's signature, and a builtin's costs
    # the tokenizer's regular expressions, compiled at import (a cold start's worth of milliseconds).
    return []


class _FormFriendly(FormFriendly):
    """Accepts HTML forms as well as JSON (rightsdesk.kernel.form_bodies)."""

    # Patterns are Python's `re`, the engine rightsdesk.kernel.identifiers checks addresses with
    # everywhere else, so the form and the core cannot disagree about an address. It also spares
    # the cold start compiling the address pattern a second time in pydantic's own engine (about
    # 5 ms for its bounded repetitions of Unicode classes).
    model_config = ConfigDict(regex_engine="python-re")


class Submission(_FormFriendly):
    """What a subject sends from the form or the API."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    site: Annotated[
        free_text.OneLine, Field(min_length=1, max_length=253, description="The controller's site key or domain")
    ]
    type: RequestType
    email: Annotated[free_text.OneLine, Field(min_length=3, max_length=MAX_EMAIL_LENGTH, pattern=EMAIL_PATTERN)]
    name: Annotated[free_text.OneLine | None, Field(max_length=200)] = None
    details: Annotated[free_text.MultiLine | None, Field(max_length=4000)] = None
    locale: Literal["en", "de", "sl"] | None = None
    relationship: Relationship = Relationship.SELF
    purposes: list[Purpose] = Field(default_factory=_no_purposes, max_length=len(Purpose))

    @field_validator("site")
    @classmethod
    def _one_spelling_of_a_site(cls, value: str) -> str:
        return identifiers.normalize_site_key(value)

    @field_validator("name", "details", "locale", mode="before")
    @classmethod
    def _blank_is_absent(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("relationship", mode="before")
    @classmethod
    def _blank_is_self(cls, value):
        return Relationship.SELF if value in ("", None) else value

    @model_validator(mode="after")
    def _purposes_for_withdrawal(self):
        if self.type is RequestType.CONSENT_WITHDRAWAL and not self.purposes:
            raise ValueError("purposes_required")
        if self.type is not RequestType.CONSENT_WITHDRAWAL:
            self.purposes = []
        return self


class VerifyInput(_FormFriendly):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    code: Annotated[str, Field(pattern=r"^[0-9]{6}$", description="The 6-digit code from the email")]
    locale: Literal["en", "de", "sl"] | None = None
