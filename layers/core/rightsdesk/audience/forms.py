"""What a controller forwards about its audience: the Global Privacy Control signal's body, as a
pydantic model.

The controller API validates the body with it (and publishes it in its OpenAPI document). Built on
first use, not when the API starts: the route's signature names it `audience.forms.GpcSignal`, and
the package imports this module when that name is first resolved (the Event Handler resolves a
route's signature when the route is first used).
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from rightsdesk.audience import gpc
from rightsdesk.kernel.form_bodies import FormFriendly
from rightsdesk.kernel.moments import Moment


class GpcSignal(FormFriendly):
    """`POST /v1/controller/gpc`: your site saw `Sec-GPC: 1` from a visitor."""

    model_config = ConfigDict(extra="forbid")

    visitor_id: str = Field(
        min_length=8,
        max_length=128,
        pattern=gpc.VISITOR_ID.pattern,
        description="Your own pseudonymous id of the visitor (a first-party cookie's value, never an address): "
        f"{gpc.VISITOR_ID_RULE}. Stored only as a keyed hash scoped to you",
    )
    seen_at: Moment | None = Field(
        default=None, description="When your site saw the signal (ISO 8601); not later than now"
    )
