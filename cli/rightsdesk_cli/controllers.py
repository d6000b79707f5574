"""`rightsdesk controllers ...`: the businesses whose sites send requests, and how they receive them.

Read-only for now; `add`, `show`, `rotate-key` and `set-delivery` belong here too.
"""

from __future__ import annotations

import typer
from rich.console import RenderableType

from rightsdesk import registry
from rightsdesk.models import ControllerItem
from rightsdesk_cli.context import use
from rightsdesk_cli.output import JsonFlag, emit, table

app = typer.Typer(help="Controllers: the businesses requests are routed to.", no_args_is_help=True)

LIST_COLUMNS = ("id", "name", "site key", "domains", "delivery", "locale")


def _row(controller: ControllerItem) -> dict:
    # No contact address or webhook URL: a listing is for finding a controller, `show` for details.
    return {
        "controller_id": controller.controller_id,
        "name": controller.name,
        "site_key": controller.site_key,
        "domains": list(controller.domains or []),
        "delivery": controller.delivery,
        "locale": controller.locale,
    }


@app.command("list")
def list_controllers(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Every registered controller."""
    state = use(ctx, json_output)
    rows = [_row(controller) for controller in registry.list_controllers()]

    def render() -> RenderableType:
        if not rows:
            return "no controllers registered"
        return table(LIST_COLUMNS, ([row[key] for key in row] for row in rows))

    emit(state, {"controllers": rows}, render)
