"""`rightsdesk report annual`: the self-assessment of a year, for auditors and controllers.

Figures from rightsdesk_cli.annual.report over facts read by rightsdesk_cli.annual.sources (no scan); the
HTML file (rightsdesk_cli.annual.html) is self-contained. `--json` prints the same figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from rightsdesk.kernel import clock
from rightsdesk_cli.annual import html as annual_html
from rightsdesk_cli.annual import report as annual_report
from rightsdesk_cli.annual import sources as annual_sources
from rightsdesk_cli.context import use
from rightsdesk_cli.output import JsonFlag, emit, note, table

app = typer.Typer(help="Reports for auditors and controllers.", no_args_is_help=True)


@app.command("annual")
def annual(
    ctx: typer.Context,
    year: Annotated[int, typer.Option("--year", min=2000, max=2999, help="The calendar year (UTC).")],
    out: Annotated[Path | None, typer.Option("--out", dir_okay=False, help="Write the HTML report here.")] = None,
    operator: Annotated[
        str | None, typer.Option("--operator", help="Who the report is for or from, shown on top.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Requests by type, route and outcome, timeliness, delivery failures, breaches and policy versions."""
    state = use(ctx, json_output)
    with Progress(
        SpinnerColumn(),
        TextColumn("reading requests: {task.completed}"),
        console=state.console,
        transient=True,
        disable=state.json,
    ) as bar:
        task = bar.add_task("requests", total=None)
        requests = list(annual_sources.requests(year, progress=lambda n: bar.advance(task, n)))
    figures = annual_report.figures(
        year,
        requests,
        annual_sources.breaches(year),
        annual_sources.policies(year),
        now=clock.now(),
        lifecycle=annual_sources.lifecycle(year),
    )
    if out is not None:
        out.write_text(annual_html.render(figures, operator=operator), encoding="utf-8")
        note(state, f"report written to {out}")

    def render():
        r = figures["requests"]
        share = f"{r['on_time_share'] * 100:.1f} %" if r["on_time_share"] is not None else "-"
        rows = [
            ("verified requests", r["total"]),
            ("answered on time", f"{r['answered_on_time']} of {r['answered']} ({share})"),
            ("answered late", r["answered_late"]),
            ("open past their due date", r["open_overdue"]),
            ("cancelled after their due date", r["withdrawn_after_due"]),
            ("median days to complete", r["days_to_complete"]["median"]),
            ("95th-percentile days", r["days_to_complete"]["p95"]),
            ("delivery failures", r["delivery_failures"]["total"]),
            (
                "breaches (notified within 72 h)",
                f"{figures['breaches']['total']} ({figures['breaches']['notified_on_time']})",
            ),
            ("policy versions published", figures["policies"]["total"]),
            ("inactivity warnings sent", figures["lifecycle"]["inactivity_warnings"]),
            ("account cancellations", figures["lifecycle"]["cancellations"]),
            ("lifecycle erasures (inactivity, cancellation, consent expiry)", figures["lifecycle"]["erasures"]),
        ]
        return table(("figure", str(year)), rows)

    emit(state, figures, render)
