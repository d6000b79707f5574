"""The body a product's callback reports (rightsdesk.connectors.callbacks, docs/connectors.md
"HTTP"): a pydantic model, in a module of its own so the callback function builds it with the
first callback, not when it starts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_RECORDS = 10_000


class CallbackBody(BaseModel):
    """What the product reports when it has finished (docs/connectors.md, "HTTP")."""

    model_config = ConfigDict(extra="forbid", strict=True)

    result: Literal["done", "nothing_found", "failed"]
    erased: int | None = Field(default=None, ge=0)
    remaining: int | None = Field(default=None, ge=0)
    records: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_RECORDS)
    failure: str | None = Field(default=None, pattern=r"^[a-z0-9_.-]{1,64}$")
