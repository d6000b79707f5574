"""`rightsdesk controllers ...`: the businesses whose sites send requests, and how they receive them.

`add`, `rotate-key` and `set-delivery` print an API key or a webhook secret exactly once: only a
keyed hash of the key and KMS ciphertext of the secret are stored. Every change is written with
its audit event in one conditional transaction (rightsdesk.routing.registry).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table

from rightsdesk.kernel.delivery_mode import DeliveryMode
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.platform import config, hashing
from rightsdesk.routing import controller_lookup, registry
from rightsdesk.store import queries
from rightsdesk.store.items.controllers import ControllerItem
from rightsdesk_cli.context import Context, use
from rightsdesk_cli.errors import CliError
from rightsdesk_cli.output import JsonFlag, cell_text, counted, emit, emit_history, short_time, table
from rightsdesk_cli.retention import DATE_FORMATS, utc

app = typer.Typer(help="Controllers: the businesses requests are routed to.", no_args_is_help=True)

LIST_COLUMNS = ("id", "name", "site key", "domains", "delivery", "locale", "state")


def _row(controller: ControllerItem) -> dict:
    # No contact address or webhook URL: a listing is for finding a controller, `show` for details.
    return {
        "controller_id": controller.controller_id,
        "name": controller.name,
        "site_key": controller.site_key,
        "domains": list(controller.domains or []),
        "delivery": controller.delivery,
        "locale": controller.locale,
        "state": controller_lookup.state_of(controller),
    }


@app.command("list")
def list_controllers(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Every registered controller."""
    state = use(ctx, json_output)
    rows = [_row(controller) for controller in queries.list_controllers()]

    def render() -> RenderableType:
        if not rows:
            return "no controllers registered"
        return table(LIST_COLUMNS, ([row[key] for key in row] for row in rows))

    emit(state, {"controllers": rows}, render)


ControllerId = Annotated[str, typer.Argument(help="The controller id (ctl_...).")]
WebhookUrl = Annotated[str | None, typer.Option("--webhook-url", help="https endpoint for --delivery webhook.")]


def _stack_resource(state: Context, logical_id: str, env_var: str) -> None:
    """Point the core at one of the stack's resources it needs for writing credentials (the hash
    key secret, the KMS data key), unless the environment names it already."""
    if os.environ.get(env_var):
        return
    if state.local:
        value = (state.local_health or {})["resources"][logical_id]["name"]
    elif state.stack:
        import boto3

        described = boto3.client("cloudformation").describe_stack_resource(
            StackName=state.stack, LogicalResourceId=logical_id
        )
        value = described["StackResourceDetail"]["PhysicalResourceId"]
    else:
        raise CliError(f"which {logical_id}? pass --stack NAME or set {env_var}", code="no_target")
    os.environ[env_var] = value
    config.reload()
    hashing.forget_key()


def _credentials(state: Context, *, sealing: bool) -> None:
    """API keys are hashed with the stack's hash key; webhook secrets sealed with its data key."""
    if not config.settings().hash_key:
        _stack_resource(state, "HashKeySecret", "HASH_KEY_SECRET_ARN")
    if sealing:
        _stack_resource(state, "DataKey", "DATA_KEY_ID")


def _explained(error: InvalidInput) -> CliError:
    """Name the offending options; the core speaks of fields."""
    problems = ", ".join(f"--{field.replace('_', '-')} ({code})" for field, code in error.fields.items())
    return CliError(f"{error.message}: {problems}" if problems else error.message, code=error.code)


def _facts(rows: list[tuple[str, object]], style: str = "bold") -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=style)
    grid.add_column()
    for label, value in rows:
        grid.add_row(label, escape(cell_text(value)))
    return grid


def _render_controller(view: dict) -> Table:
    return _facts(
        [
            ("controller id", view["controller_id"]),
            ("name", view["name"]),
            ("site key", view["site_key"]),
            ("domains", view["domains"]),
            ("contact", view["contact_email"]),
            ("locale", view["locale"]),
            ("delivery", view["delivery"]),
            ("tenant id", view["tenant_id"]),
            ("webhook url", view["webhook_url"]),
            ("webhook secret", view["webhook_secret"]),
            ("previous secret valid until", view["previous_webhook_secret_valid_until"]),
            ("sla days", view["sla_days"]),
            ("purge after delivery", view["purge_after"] or "default (retention rule)"),
            ("created", view["created_at"]),
            ("updated", view["updated_at"]),
            ("state", view["state"] + (f" since {view['state_changed_at']}" if view["state"] != "active" else "")),
            ("state reason", view["state_reason"]),
            ("deliveries now", view["delivery_now"]),
        ]
    )


def _render_once(view: dict | None, secrets: dict[str, str | None]) -> RenderableType:
    parts: list[RenderableType] = [_render_controller(view)] if view else []
    shown = [(label, value) for label, value in secrets.items() if value]
    if shown:
        parts += [
            "",
            _facts(shown, style="bold yellow"),
            "[yellow]Shown once: store it now. rightsdesk keeps only a hash or ciphertext.[/]",
        ]
    return Group(*parts)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="The controller's name, as the operator knows it.")],
    site: Annotated[str, typer.Option("--site", help="Site key subjects type into the form (a-z, 0-9, -).")],
    contact: Annotated[str, typer.Option("--contact", help="The controller's privacy contact (email).")],
    delivery: Annotated[
        DeliveryMode, typer.Option("--delivery", help="How requests reach it; internal = the operator's own data.")
    ],
    domain: Annotated[list[str] | None, typer.Option("--domain", help="A domain of the site (repeatable).")] = None,
    webhook_url: WebhookUrl = None,
    sla_days: Annotated[
        int | None, typer.Option("--sla-days", help="Promised answer time in days, if shorter than the law's month.")
    ] = None,
    purge_after: Annotated[
        str | None,
        typer.Option("--purge-after", help="Purge subject data this long after delivery (ISO 8601: PT1H, PT30M, P1D)."),
    ] = None,
    locale: Annotated[str, typer.Option("--locale", help="Language of emails to the controller (en, de, sl).")] = "en",
    controller_id: Annotated[str | None, typer.Option("--id", help="Choose the id instead of a generated one.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Register a controller; prints its API key (and webhook secret) once."""
    state = use(ctx, json_output)
    try:
        purge_seconds = registry.parse_duration(purge_after) if purge_after else None
        _credentials(state, sealing=delivery is DeliveryMode.WEBHOOK)
        created = registry.register(
            name=name,
            site_key=site,
            contact_email=contact,
            delivery=delivery.value,
            domains=tuple(domain or ()),
            webhook_url=webhook_url,
            locale=locale,
            sla_days=sla_days,
            purge_after_seconds=purge_seconds,
            controller_id=controller_id,
            allow_loopback_http=state.local,
            actor=state.operator,
        )
    except InvalidInput as error:
        raise _explained(error) from None
    view = registry.describe(created.controller)
    secrets = {"api key": created.api_key, "webhook secret": created.webhook_secret}
    emit(
        state,
        {"controller": view, "api_key": created.api_key, "webhook_secret": created.webhook_secret},
        lambda: _render_once(view, secrets),
    )


@app.command("show")
def show(ctx: typer.Context, controller_id: ControllerId, json_output: JsonFlag = False) -> None:
    """One controller's settings (never its key or secret)."""
    state = use(ctx, json_output)
    view = registry.describe(controller_lookup.require_controller(controller_id))
    emit(state, {"controller": view}, lambda: _render_controller(view))


@app.command("history")
def history(
    ctx: typer.Context,
    controller_id: ControllerId,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many events, newest first.")] = 20,
    json_output: JsonFlag = False,
) -> None:
    """What happened to a controller: key and secret rotations, delivery changes, webhook tests, an
    endpoint disabled after a 410, and how each policy.updated webhook went."""
    state = use(ctx, json_output)
    emit_history(state, ("controller_id", controller_id), registry.history(controller_id, limit), ("cause",))


@app.command("rotate-key")
def rotate_key(ctx: typer.Context, controller_id: ControllerId, json_output: JsonFlag = False) -> None:
    """Issue a new API key; the old one stops working at once. Prints the new key once."""
    state = use(ctx, json_output)
    _credentials(state, sealing=False)
    api_key = registry.rotate_api_key(controller_id, actor=state.operator)
    emit(state, {"controller_id": controller_id, "api_key": api_key}, lambda: _render_once(None, {"api key": api_key}))


@app.command("set-delivery")
def set_delivery(
    ctx: typer.Context,
    controller_id: ControllerId,
    delivery: Annotated[
        DeliveryMode, typer.Option("--delivery", help="How requests reach the controller from now on.")
    ],
    webhook_url: WebhookUrl = None,
    json_output: JsonFlag = False,
) -> None:
    """Change how requests reach a controller. Switching to webhook prints a new secret once."""
    state = use(ctx, json_output)
    try:
        if delivery is DeliveryMode.WEBHOOK:
            _credentials(state, sealing=True)
        controller, secret = registry.set_delivery(
            controller_id, delivery.value, webhook_url, allow_loopback_http=state.local, actor=state.operator
        )
    except InvalidInput as error:
        raise _explained(error) from None
    view = registry.describe(controller)
    emit(state, {"controller": view, "webhook_secret": secret}, lambda: _render_once(view, {"webhook secret": secret}))


@app.command("set-tenant")
def set_tenant(
    ctx: typer.Context,
    controller_id: ControllerId,
    tenant_id: Annotated[
        str | None,
        typer.Option(
            "--tenant-id",
            help="The tenant the platform's stores know this controller by (used by tenant-scoped connectors "
            "when it asks for an execution). Left out: back to its controller id.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Set the controller's tenant id for executions it asks of rightsdesk as its processor."""
    state = use(ctx, json_output)
    try:
        controller = registry.set_tenant(controller_id, tenant_id, actor=state.operator)
    except InvalidInput as error:
        raise _explained(error) from None
    view = registry.describe(controller)
    emit(state, {"controller": view}, lambda: _render_controller(view))


# ------------------------------------------------------------------ offboarding

Reason = Annotated[str | None, typer.Option("--reason", help="Why (one line, kept on the controller's audit trail).")]


def _state_change(state: Context, controller, what: str) -> None:
    view = registry.describe(controller)
    emit(state, {"controller": view}, lambda: f"controller {view['controller_id']} is {view['state']}; {what}")


@app.command("disable")
def disable(
    ctx: typer.Context, controller_id: ControllerId, reason: Reason = None, json_output: JsonFlag = False
) -> None:
    """Suspend a controller: its API key stops working, its sites take no new requests (the form
    answers site_unavailable), open requests stay due and are delivered by email to its privacy contact."""
    state = use(ctx, json_output)
    try:
        controller = registry.disable(controller_id, reason=reason, actor=state.operator)
    except InvalidInput as error:
        raise _explained(error) from None
    _state_change(state, controller, "API key refused, new submissions refused, deliveries by email to its contact")


@app.command("enable")
def enable(
    ctx: typer.Context, controller_id: ControllerId, reason: Reason = None, json_output: JsonFlag = False
) -> None:
    """Undo `disable`: the same API key works again and deliveries take the controller's own route."""
    state = use(ctx, json_output)
    try:
        controller = registry.enable(controller_id, reason=reason, actor=state.operator)
    except InvalidInput as error:
        raise _explained(error) from None
    _state_change(state, controller, f"deliveries by {controller.delivery} again")


@app.command("remove")
def remove(
    ctx: typer.Context,
    controller_id: ControllerId,
    reason: Reason = None,
    release_sites: Annotated[
        bool,
        typer.Option(
            "--release-sites",
            help="Free its site keys and domains for another controller (the form then calls them unknown).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Offboard a controller for good: its API key and webhook secrets are deleted and nothing more is
    delivered to it. Its open requests stay due: answer them with `rightsdesk requests answer`."""
    state = use(ctx, json_output)
    if not yes and not typer.confirm(f"Remove controller {controller_id} for good?", default=False):
        raise CliError("not removed", code="aborted")
    try:
        controller = registry.remove(controller_id, reason=reason, release_sites=release_sites, actor=state.operator)
    except InvalidInput as error:
        raise _explained(error) from None
    from rightsdesk.kernel.status import is_open

    open_ids = [
        item.request_id
        for item in queries.list_requests(controller_id=controller_id)
        if is_open(item.status) and item.status != "identity_unverified"
    ]
    view = registry.describe(controller)
    emit(
        state,
        {"controller": view, "open_requests": open_ids},
        lambda: (
            f"controller {controller_id} is removed; {counted(len(open_ids), 'open request', 'open requests')} "
            f"to answer with `rightsdesk requests answer <id> --status ...`"
            + (f": {', '.join(open_ids)}" if open_ids else "")
        ),
    )


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    controller_id: ControllerId,
    status: Annotated[str | None, typer.Option("--status", help="delivered, retrying, exhausted or failed.")] = None,
    event_type: Annotated[
        str | None, typer.Option("--event-type", help="dsr.request.forwarded, breach.notice, webhook.test, ...")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option("--since", formats=DATE_FORMATS, help="Attempts from this time (UTC).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option("--until", formats=DATE_FORMATS, help="Attempts up to this time (UTC).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="How many attempts, newest first.")] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="The next page, from the last listing.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """The controller's webhook delivery attempts, newest first: what the controller itself sees at
    GET /v1/controller/deliveries (time, event, webhook-id, HTTP status, latency, error class,
    outcome; never a body). Kept 90 days."""
    from rightsdesk.routing import delivery_log
    from rightsdesk_cli.wiring import connect_hash_key

    state = use(ctx, json_output)
    connect_hash_key(state)  # a page's cursor is signed with the stack's hash key, as the API signs it
    controller_lookup.require_controller(controller_id)
    filters = delivery_log.Filters(status=status, event_type=event_type, since=utc(since), until=utc(until))
    try:
        attempts, next_cursor = delivery_log.list_page(controller_id, filters, cursor=cursor, limit=limit)
    except InvalidInput as error:
        raise _explained(error) from None
    columns = ("at", "event", "webhook id", "request", "try", "outcome", "http", "ms", "error")
    keys = ("attempted_at", "event_type", "webhook_id", "request_id", "attempt", "outcome", "http_status")
    keys += ("latency_ms", "error_class")

    def render() -> RenderableType:
        if not attempts:
            return f"no delivery attempts for {controller_id}"
        listing = table(
            columns,
            ([short_time(a["attempted_at"]), *(a[key] for key in keys[1:])] for a in attempts),
            title=f"{controller_id}: {counted(len(attempts), 'attempt', 'attempts')}, newest first",
        )
        return Group(listing, f"more: --cursor {next_cursor}") if next_cursor else listing

    emit(state, {"controller_id": controller_id, "deliveries": attempts, "next_cursor": next_cursor}, render)
