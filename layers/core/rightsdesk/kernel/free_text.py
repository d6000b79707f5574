"""Which characters a free-text field may hold: the one rule for every field a person types that
reaches a mail, a page, a webhook or the controller (addresses, names, sites, details, reasons).

Refused everywhere: control characters (C0, DEL, C1: NUL, CR, LF, ESC ...), format characters
(bidirectional overrides and isolates, zero-width spaces and joiners, soft hyphens, BOM), lone
surrogates, and the Unicode line and paragraph separators. A one-line field (an address, a name, a
site, a reason) may hold none of them, so it can never start a new line in a plain-text mail nor
reorder what a reader sees around it. A multi-line field (a request's details) may also hold line
feeds (CR LF, as a browser's textarea sends them, becomes LF) and tabs; a plain-text mail shows its
lines quoted (rightsdesk.render.mail's `quoted` filter), so no line of it can pass for one of the mail's own.

Refusing, never stripping: the person sees which field to correct, and what is stored is what was typed.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# The field code a client and the form see (rightsdesk.platform.http maps the validation error to it).
INVALID_CHARACTERS = "invalid_characters"

# Cc: control, Cf: format (bidi, zero-width, BOM ...), Cs: surrogate, Zl/Zp: line and paragraph separators
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_MULTI_LINE_ALLOWED = frozenset("\n\t")


def _refused(char: str, allowed: frozenset[str]) -> bool:
    return char not in allowed and unicodedata.category(char) in _REFUSED_CATEGORIES


def one_line_ok(value: str) -> bool:
    """True if `value` holds no character this module refuses (no line break of any kind)."""
    return not any(_refused(char, frozenset()) for char in value)


def multi_line_ok(value: str) -> bool:
    """True if `value`, line breaks normalized (normalize_newlines), holds only LF and tab besides
    what a one-line field may hold."""
    return not any(_refused(char, _MULTI_LINE_ALLOWED) for char in normalize_newlines(value))


def normalize_newlines(value: str) -> str:
    """CR LF -> LF. A CR on its own stays, and is refused."""
    return value.replace("\r\n", "\n")


def _one_line(value: str) -> str:
    if not one_line_ok(value):
        raise PydanticCustomError(INVALID_CHARACTERS, "holds a control, line-break or invisible formatting character")
    return value


def _multi_line(value: str) -> str:
    value = normalize_newlines(value)
    if not multi_line_ok(value):
        raise PydanticCustomError(INVALID_CHARACTERS, "holds a control or invisible formatting character")
    return value


# Field types for pydantic models: `name: OneLine | None = None`.
OneLine = Annotated[str, AfterValidator(_one_line)]
MultiLine = Annotated[str, AfterValidator(_multi_line)]
