"""API bodies take a moment as ISO 8601 text only (rightsdesk.kernel.moments)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import BaseModel, ValidationError

from rightsdesk.kernel.moments import Moment


class Body(BaseModel):
    since: Moment


@pytest.mark.parametrize("value", [0, 1796000000, 1.5, True, None, [], {}, "0", "0.0", "1796000000"])
def test_a_number_or_anything_not_text_is_refused(value):
    with pytest.raises(ValidationError):
        Body(since=value)


@pytest.mark.parametrize(
    "value",
    ["2027-01-31T12:00:00Z", "2027-01-31T13:00:00+01:00", datetime(2027, 1, 31, 12, tzinfo=timezone.utc)],
)
def test_iso_text_is_the_moment_it_names(value):
    assert Body(since=value).since == datetime(2027, 1, 31, 12, tzinfo=timezone.utc)


def test_text_that_is_no_moment_is_refused():
    with pytest.raises(ValidationError):
        Body(since="yesterday")
