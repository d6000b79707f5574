"""A moment as an API body carries it: ISO 8601 text, nothing else.

pydantic's lax mode also reads a number (or, in a query string, text like `0.0`) as seconds since
1970, so `{"since": 0}` meant 1 January 1970 instead of being refused; the published documents say
these fields are date-time strings. Only the API functions import this module (it brings pydantic).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator

_ISO_DATE_FIRST = re.compile(r"\s*\d{4}-\d{2}-\d{2}")


def _text_only(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE_FIRST.match(value)):
        return value
    raise ValueError("give an ISO 8601 date and time, e.g. 2027-01-31T12:00:00Z")


Moment = Annotated[datetime, BeforeValidator(_text_only)]
