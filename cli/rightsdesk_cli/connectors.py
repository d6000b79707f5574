"""`rightsdesk connectors ...`: where the operator's own data lives, and rightsdesk's access to it.

A definition (JSON or YAML, docs/connectors.md) holds no secrets; rightsdesk assumes the role it
names. A new connector runs dry (finds and plans, never writes) until `enable`; `test` proves the
access without changing data. Every change is audited with the operator's name
(rightsdesk.connectors.registry).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table

from rightsdesk.connectors import registry
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk_cli.context import use
from rightsdesk_cli.errors import CliError
from rightsdesk_cli.output import JsonFlag, cell_text, counted, emit, emit_history, note, short_time, table

app = typer.Typer(help="Connectors: the operator's own stores requests are carried out in.", no_args_is_help=True)

ConnectorId = Annotated[str, typer.Argument(help="The connector's id (as in its definition).")]
LIST_COLUMNS = ("id", "kind", "state", "needs", "yields", "role", "updated")
MAX_FILE_BYTES = 256 * 1024  # a definition is a few hundred bytes; a DynamoDB item holds 400 KB


def _explained(error: InvalidInput) -> CliError:
    """The core names fields; say each one and what a valid value looks like."""
    problems = "; ".join(f"{field}: {why}" for field, why in sorted(error.fields.items()))
    return CliError(f"{error.message}: {problems}" if problems else error.message, code=error.code)


def _read_definition(file: Path | None) -> dict[str, Any]:
    """The definition from --file (JSON or YAML) or standard input."""
    if file is None or str(file) == "-":
        if sys.stdin.isatty():
            raise CliError("give the definition with --file PATH, or pipe it on standard input", code="no_definition")
        text = sys.stdin.read(MAX_FILE_BYTES + 1)
        source = "standard input"
    else:
        try:
            with file.open(encoding="utf-8") as handle:
                text = handle.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise CliError(f"cannot read {file}: {error.strerror or type(error).__name__}", code="unreadable") from None
        except UnicodeDecodeError:
            raise CliError(f"{file} is not UTF-8 text", code="unreadable") from None
        source = str(file)
    if len(text) > MAX_FILE_BYTES:
        raise CliError(
            f"{source} is larger than {MAX_FILE_BYTES // 1024} KB: not a connector definition", code="too_large"
        )
    import yaml

    try:
        # YAML's safe loader reads JSON too; nothing in a definition needs YAML's object tags.
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise CliError(f"{source} is neither JSON nor YAML{where}", code="unreadable") from None
    if not isinstance(document, dict):
        raise CliError(f"{source} must hold one object: a connector definition", code="invalid_connector_definition")
    return document


def _row(view: dict) -> list[Any]:
    return [
        view["connector_id"],
        view["kind"],
        view["state"] if not view["problem"] else f"{view['state']} (invalid)",
        view["needs"],
        view["yields"],
        view["role_arn"],
        short_time(view["updated_at"]),
    ]


def _facts(view: dict) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in (
        ("connector id", view["connector_id"]),
        ("kind", view["kind"]),
        ("state", view["state"]),
        ("runs", view["runs"]),
        ("role", view["role_arn"]),
        ("needs", view["needs"]),
        ("yields", view["yields"]),
        ("created", view["created_at"]),
        ("updated", view["updated_at"]),
        ("state changed", view["state_changed_at"]),
        ("problem", view["problem"]),
    ):
        grid.add_row(label, escape(cell_text(value)))
    definition = escape(json.dumps(view["definition"], indent=2, sort_keys=True))
    return Group(grid, "", "[bold]definition[/]", definition)


@app.command("add")
def add(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="The definition, JSON or YAML (default or `-`: standard input)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Store a connector definition; it runs dry until `connectors enable`."""
    document = _read_definition(file)
    state = use(ctx, json_output)
    try:
        stored = registry.add(document, actor=state.operator)
    except InvalidInput as error:
        raise _explained(error) from None
    view = registry.describe(stored)
    emit(state, {"connector": view}, lambda: _facts(view))
    note(state, f"runs dry until enabled: `rightsdesk connectors test {stored.connector_id}`, then `enable`")


@app.command("list")
def list_connectors(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Every stored connector, and the order they run in."""
    state = use(ctx, json_output)
    views = [registry.describe(stored) for stored in registry.list_connectors()]
    try:
        stages: list[list[str]] | None = [list(stage) for stage in registry.plan().stages]
        problem = None
    except InvalidInput as error:
        stages, problem = None, _explained(error).message

    def render() -> RenderableType:
        if not views:
            return "no connectors stored: `rightsdesk connectors add --file DEFINITION`"
        order = " -> ".join(" + ".join(stage) for stage in stages) if stages else f"none: {problem}"
        return Group(table(LIST_COLUMNS, (_row(view) for view in views)), "", f"run order: {escape(order)}")

    emit(state, {"connectors": views, "stages": stages, "problem": problem}, render)


@app.command("show")
def show(ctx: typer.Context, connector_id: ConnectorId, json_output: JsonFlag = False) -> None:
    """One connector: its state, what it needs and yields, and its definition."""
    state = use(ctx, json_output)
    view = registry.describe(registry.get(connector_id))
    emit(state, {"connector": view}, lambda: _facts(view))


@app.command("history")
def history(
    ctx: typer.Context,
    connector_id: ConnectorId,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many events, newest first.")] = 20,
    json_output: JsonFlag = False,
) -> None:
    """Who added, enabled, disabled, indexed or removed a connector (and purged its S3 index: the
    counts are the cause), and when (also after its removal)."""
    state = use(ctx, json_output)
    events = registry.history(connector_id, limit)
    emit_history(state, ("connector_id", connector_id), events, ("from", "to", "cause"))


@app.command("test")
def test(ctx: typer.Context, connector_id: ConnectorId, json_output: JsonFlag = False) -> None:
    """Prove access without changing data: assume the role, then exercise each permission the kind
    needs with a call that cannot change anything. Exits 1 unless every check is allowed."""
    state = use(ctx, json_output)
    report = registry.probe(connector_id).to_dict()

    def render() -> RenderableType:
        if not report["checks"]:
            return f"{connector_id} ({report['kind']}): this kind has no access probe; nothing was proved"
        verdict = "[green]access proved[/]" if report["ok"] else "[red]access NOT proved[/]"
        rows = ([c["operation"], c["result"], c["code"]] for c in report["checks"])
        return Group(table(("permission", "result", "code"), rows), "", f"{escape(connector_id)}: {verdict}")

    emit(state, {"test": report}, render)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("index")
def index(ctx: typer.Context, connector_id: ConnectorId, json_output: JsonFlag = False) -> None:
    """Index what an S3 connector's indexed row-file prefixes hold already (through its role) and
    mark them ready: until then a find reads the whole prefix. Run it once after the bucket's
    notifications reach the S3 index queue (docs/connectors.md, "The S3 index"); again is harmless."""
    from rightsdesk.connectors import s3_index
    from rightsdesk_cli.controllers import _credentials

    state = use(ctx, json_output)
    _credentials(state, sealing=True)  # entries are keyed hashes, object keys sealed with the data key
    try:
        report = s3_index.backfill_connector(connector_id, actor=state.operator)
    except InvalidInput as error:
        raise _explained(error) from None
    prefixes = ", ".join(report["prefixes"])
    emit(state, {"index": report}, lambda: f"{connector_id}: {report['objects']} objects indexed under {prefixes}")


@app.command("enable")
def enable(ctx: typer.Context, connector_id: ConnectorId, json_output: JsonFlag = False) -> None:
    """Let the connector erase for real from the next run on (it ran dry until now)."""
    state = use(ctx, json_output)
    try:
        view = registry.describe(registry.enable(connector_id, actor=state.operator))
    except InvalidInput as error:  # the identity graph over the stored connectors no longer holds
        raise _explained(error) from None
    emit(state, {"connector": view}, lambda: f"{connector_id} is enabled: it runs for real from the next run on")


@app.command("disable")
def disable(ctx: typer.Context, connector_id: ConnectorId, json_output: JsonFlag = False) -> None:
    """Back to dry: the connector still finds (and yields identities to others), never writes."""
    state = use(ctx, json_output)
    view = registry.describe(registry.disable(connector_id, actor=state.operator))
    emit(state, {"connector": view}, lambda: f"{connector_id} is disabled: it runs dry (finds, never writes)")


@app.command("remove")
def remove(ctx: typer.Context, connector_id: ConnectorId, json_output: JsonFlag = False) -> None:
    """Delete the definition for good (its audit trail stays), then its S3 index's items. Refused
    while another connector needs an identity only this one yields. Again on a removed id whose
    index purge was cut short: purges the rest."""
    state = use(ctx, json_output)
    removal = registry.remove(connector_id, actor=state.operator)
    emit(state, removal.to_dict(), lambda: _removed(removal))


# The index's kinds of item as the CLI counts them: `1 object`, `2 entries`, `1 ready prefix`.
_INDEX_ITEM_NOUNS = {
    "objects": ("object", "objects"),
    "entries": ("entry", "entries"),
    "unindexed": ("unindexed object", "unindexed objects"),
    "ready": ("ready prefix", "ready prefixes"),
}


def _removed(removal: registry.Removal) -> str:
    """`chats is removed with 42 S3 index items (7 objects, 33 entries, 1 unindexed object, 1 ready prefix)`."""
    items = counted(removal.index_items_removed, "S3 index item", "S3 index items")
    kinds = [counted(n, *_INDEX_ITEM_NOUNS[kind]) for kind, n in removal.index_items.items() if n]
    detail = f" ({', '.join(kinds)})" if kinds else ""
    if not removal.definition_removed:
        return f"{removal.connector_id} was removed already; the rest of its index is purged now: {items}{detail}"
    if not removal.index_items_removed:
        return f"{removal.connector_id} is removed (no S3 index items)"
    return f"{removal.connector_id} is removed with {items}{detail}"
