"""Global Privacy Control (W3C GPC): the one reading of the `Sec-GPC` header, what the signal opts
out of, and what `/.well-known/gpc.json` says.

The spec's header rule: `Sec-GPC` is a Structured Header whose only defined value is `1`; a
value that is anything else after trimming optional whitespace (`0`, `true`, `1, 1`, empty, a
repeated header folded into a list) is no signal. A signal is an opt-out of sale and sharing
(cross-context behavioral advertising), never a request to erase anything.
"""

from __future__ import annotations

from rightsdesk.kernel.rights import Purpose

HEADER = "sec-gpc"
SOURCE = "gpc"  # the consent ledger's source for a withdrawal a GPC signal made
PURPOSES: tuple[str, ...] = (Purpose.SALE_SHARE.value, Purpose.CROSS_CONTEXT_ADVERTISING.value)
# When the operator last changed how it honours the signal: the `lastUpdate` of /.well-known/gpc.json.
LAST_UPDATE = "2026-12-04"
# HTTP's optional whitespace (RFC 9110 OWS): space and horizontal tab, nothing else.
_OWS = " \t"


def signal_present(value: str | None) -> bool:
    """True only for a header whose value is exactly `1` once optional whitespace is trimmed."""
    return value is not None and value.strip(_OWS) == "1"


def well_known() -> dict[str, object]:
    """The body of /.well-known/gpc.json: this service honours the signal, since LAST_UPDATE."""
    return {"gpc": True, "lastUpdate": LAST_UPDATE}
