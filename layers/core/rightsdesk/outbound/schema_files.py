"""The JSON Schema files shipped with the layer (event_schemas/), read once each, on first use.

Apart from rightsdesk.outbound.event_catalog so that an API function can read one (the policy
version's, which the public archive answers too) without loading the webhook sender.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent / "event_schemas"


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))


def load(name: str) -> dict[str, Any]:
    """event_schemas/<name>.json (a copy: callers may change it)."""
    return copy.deepcopy(_read(name))
