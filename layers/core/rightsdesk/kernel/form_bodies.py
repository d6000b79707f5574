"""A body the APIs read from JSON or from an HTML form alike, as a pydantic base model.

The Event Handler parses a form-encoded body with parse_qs, so every field arrives as the list of
its values; a field that holds one value takes its only value (a field that is a list keeps the
list). Both APIs' bodies (the subject's form, the controller's reports, redeliveries and signals)
derive from it, so a body the published documents offer form-encoded is read from a form.
Only the API functions import this module (it brings pydantic).
"""

from __future__ import annotations

from typing import Any, get_origin

from pydantic import BaseModel, model_validator


class FormFriendly(BaseModel):
    """Accepts HTML forms as well as JSON: a form field arrives as a list of its values."""

    @model_validator(mode="before")
    @classmethod
    def _unwrap_form_lists(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        unwrapped = dict(data)
        for name, model_field in cls.model_fields.items():
            value = unwrapped.get(name)
            if isinstance(value, list) and get_origin(model_field.annotation) is not list:
                unwrapped[name] = value[0] if len(value) == 1 else value
        return unwrapped
