"""What a controller sends to the controller API about its requests and deliveries: the bodies, as
pydantic models.

The controller API validates its bodies with them (and publishes them in its OpenAPI document).
Built on first use, not when the API starts (about a millisecond or two each): the routes'
signatures name them `controller_requests.StatusReport` (that module's `__getattr__`) and
`routing.controller_forms.RedeliverSince` (the package imports this module when the name is first
resolved), and the Event Handler resolves a route's signature when the route is first used.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from rightsdesk.kernel import deadlines, free_text
from rightsdesk.kernel.form_bodies import FormFriendly
from rightsdesk.kernel.moments import Moment
from rightsdesk.kernel.status import CONTROLLER_ANSWERS
from rightsdesk.kernel.status import values as status_values
from rightsdesk.routing.delivery_words import EventType

# The report's choices, in the lifecycle's order (the OpenAPI enum reads so).
AnsweredStatus = Literal[status_values(CONTROLLER_ANSWERS)]  # type: ignore[valid-type]


class StatusReport(FormFriendly):
    """`POST /v1/controller/requests/{id}/status`. With `extend_to` and no `status` (or the status the
    request already has) the due date moves and the status stays."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: Annotated[
        AnsweredStatus | None,
        Field(description="The new status; may be left out when only extending (`extend_to`)"),
    ] = None
    reason: Annotated[
        free_text.OneLine | None,
        Field(max_length=2000, description="Shown to the subject; required to reject or extend"),
    ] = None
    extend_to: Annotated[
        datetime | None,
        BeforeValidator(deadlines.end_of_date),
        Field(
            description="New due date (ISO 8601; a date alone means the end of that UTC day); "
            "at most 3 months after verification; only while the due date has not passed"
        ),
    ] = None

    @model_validator(mode="after")
    def _something_to_report(self) -> StatusReport:
        if self.status is None and self.extend_to is None:
            raise ValueError("give a status, an extend_to, or both")
        return self


class RedeliverSince(FormFriendly):
    """`POST /v1/controller/deliveries/redeliver`: every delivery not delivered since `since`."""

    model_config = ConfigDict(extra="forbid")

    since: Moment = Field(description="Deliveries whose latest attempt failed at or after this time")
    until: Moment | None = Field(default=None, description="... and at or before this time")
    event_type: EventType | None = None


# ------------------------------------------------------------------ a processor run (controller_execution)

MAX_IDENTITIES = 10
MAX_VALUE = 512
_KIND = r"^[a-z][a-z0-9_]{0,39}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ExecuteInput(BaseModel):
    """`POST /v1/controller/requests/{id}/execute`."""

    model_config = ConfigDict(extra="forbid")

    identities: Annotated[
        dict[Annotated[str, Field(pattern=_KIND)], Annotated[str, Field(min_length=1, max_length=MAX_VALUE)]],
        Field(
            min_length=1,
            max_length=MAX_IDENTITIES,
            description="The subject's identities as you know them, by kind (e.g. `user_id`, `email`): the kinds "
            "the platform's tenant-scoped connectors need. Used for this execution only, kept sealed until it "
            "ends, never logged or returned. `tenant_id` is yours already and cannot be given",
        ),
    ]

    @field_validator("identities")
    @classmethod
    def _plain_values(cls, identities: dict[str, str]) -> dict[str, str]:
        for value in identities.values():
            if _CONTROL.search(value) or not value.strip():
                raise ValueError("identity values are text without control characters")
        return identities
