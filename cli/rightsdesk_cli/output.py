"""Human tables or machine JSON: one call per command decides, so `--json` stdout stays pure."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from rightsdesk_cli.context import Context

UNBOUNDED = 10_000
# Subjects type names and details; escape sequences in them must not drive the operator's terminal
# (clear the screen, write the clipboard) and bidi overrides must not disguise text.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout (also a global option).")]


def counted(n: int, singular: str, plural: str) -> str:
    """`1 request`, `2 requests`: a count and its noun, by Babel's plural rule (the CLI speaks English)."""
    from rightsdesk.render import i18n

    return f"{n} {i18n.ngettext(singular, plural, n, 'en')}"


def who(event: dict) -> str:
    """An audit event's actor as a table cell: for an operator, who (principal, account, hash start)."""
    operator = event.get("operator")
    if not operator:
        return event["actor"]
    from rightsdesk.platform.operator_identity import label

    return f"{event['actor']} {label(**operator)}"


def emit_history(state: Context, owner: tuple[str, str], events: Iterable[Any], details: Sequence[str]) -> None:
    """An owner's audit events (`owner`: its id's JSON name and value), newest first: each event's
    time, action and who did it, and the event attributes named in `details` (JSON name -> attribute
    `from`/`to` read `from_status`/`to_status`)."""
    from rightsdesk.kernel import clock
    from rightsdesk.store import audit

    attribute = {"from": "from_status", "to": "to_status"}
    views = [
        {
            "at": clock.isoformat(e.at),
            "action": e.action,
            "actor": e.actor,
            "operator": audit.operator_view(e),
            **{name: getattr(e, attribute.get(name, name)) for name in details},
        }
        for e in events
    ]
    key, owner_id = owner
    emit(
        state,
        {key: owner_id, "events": views},
        lambda: table(
            ("at", "action", "actor", *details),
            ([v["at"], v["action"], who(v), *(v[name] for name in details)] for v in views),
            title=f"{owner_id}: latest {counted(len(views), 'event', 'events')}, newest first",
        ),
    )


def emit(state: Context, data: Any, render: Callable[[], RenderableType]) -> None:
    """`data` as JSON with --json; otherwise what `render` builds, for people."""
    if state.json:
        sys.stdout.write(json.dumps(data, indent=2, default=_jsonable) + "\n")
        return
    console = state.console
    renderable = render()
    # A cut id cannot be pasted into `show`: on a narrow terminal, let the terminal wrap instead.
    console.width = max(console.width, _whole_width(console, renderable))
    console.print(renderable)


def _whole_width(console: Console, renderable: RenderableType) -> int:
    """The width the widest table of whole cells (see `table`) needs."""
    parts = renderable.renderables if isinstance(renderable, Group) else [renderable]
    options = console.options.update(max_width=UNBOUNDED)
    return max(
        (
            Measurement.get(console, options, part).maximum
            for part in parts
            if isinstance(part, Table) and all(column.no_wrap for column in part.columns)
        ),
        default=0,
    )


def note(state: Context, message: str) -> None:
    """A hint for people; stderr, so piped tables and JSON are left alone."""
    if not state.json:
        Console(stderr=True, highlight=False).print(f"[dim]{escape(message)}[/]")


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> Table:
    """Cells are never wrapped or cut (see `emit`); no vertical rules, so copied cells come out clean."""
    grid = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, show_edge=False)
    for column in columns:
        grid.add_column(column, no_wrap=True)
    for row in rows:
        grid.add_row(*(escape(cell_text(value)) for value in row))
    return grid


def short_time(iso: str | None) -> str | None:
    """Minutes are enough in a listing; JSON and `show` keep the full ISO time."""
    return iso[:16].replace("T", " ") if iso else iso


def cell_text(value: Any) -> str:
    """Any value as safe, visible text for a human table."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell_text(part) for part in value) or "-"
    return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", str(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        from rightsdesk.kernel import clock

        return clock.isoformat(value)
    return str(value)
