"""`rightsdesk policy ...`: publish a policy version to the public archive, and tell everyone concerned.

A major (material) version is emailed to every controller's privacy contact and every contact on
the policy lists, in their language; a minor one only to the optional policy_updates list, with a
one-click unsubscribe link. Running the same publish again finishes an interrupted fan-out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType

from rightsdesk.kernel import clock
from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.notices import policies
from rightsdesk_cli.context import use
from rightsdesk_cli.moments import parse_moment
from rightsdesk_cli.output import JsonFlag, counted, emit, note, table
from rightsdesk_cli.wiring import connect_mail

app = typer.Typer(
    help="Policy versions: publish (and notify), list; the archive is public at /v1/policies.", no_args_is_help=True
)

SummaryFile = Annotated[Path | None, typer.Option(exists=True, dir_okay=False, readable=True)]
MAX_FILE_BYTES = 64 * 1024


def _read(path: Path | None, flag: str) -> str | None:
    if path is None:
        return None
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(f"{flag}: the summary file is larger than 64 KB", fields={flag: "too_long"})
    return path.read_text(encoding="utf-8")


def _read_text(path: Path) -> bytes:
    if path.stat().st_size > policies.MAX_TEXT_BYTES:
        raise InvalidInput("--text-file: the document is larger than 2 MB", fields={"text_file": "too_long"})
    return path.read_bytes()  # hashed as it is: `sha256sum FILE` shows the same digest


@app.command("publish")
def publish(
    ctx: typer.Context,
    doc: Annotated[str, typer.Option("--doc", help="Which document: privacy, terms, cookies, dpa, ...")],
    version: Annotated[str, typer.Option("--version", help="Its new version, e.g. 2026-12.")],
    url: Annotated[str, typer.Option("--url", help="Where the full text is published (https).")],
    summary_file: Annotated[
        Path,
        typer.Option(
            "--summary-file",
            exists=True,
            dir_okay=False,
            readable=True,
            help="Summary of the changes in English (Markdown as plain text).",
        ),
    ],
    text_file: Annotated[
        Path,
        typer.Option(
            "--text-file",
            exists=True,
            dir_okay=False,
            readable=True,
            help="The document's full text, the file published at --url: its "
            "SHA-256 is recorded so the version can be proven later.",
        ),
    ],
    summary_file_de: SummaryFile = None,
    summary_file_sl: SummaryFile = None,
    major: Annotated[bool, typer.Option("--major", help="A material change: email every concerned party.")] = False,
    effective_at: Annotated[
        str | None, typer.Option("--effective-at", help="When it takes effect (ISO 8601, UTC); default now.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Publish a version (archived for good) and queue its emails."""
    state = connect_mail(use(ctx, json_output))
    summaries = {
        "en": _read(summary_file, "summary_file"),
        "de": _read(summary_file_de, "summary_file_de"),
        "sl": _read(summary_file_sl, "summary_file_sl"),
    }
    publication = policies.Publication(
        doc=doc,
        version=version,
        url=url,
        summaries={k: v for k, v in summaries.items() if v},
        major=major,
        text=_read_text(text_file),
        effective_at=parse_moment(effective_at, "effective_at") if effective_at else None,
        actor=state.operator,
    )
    published = policies.publish(publication)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("queueing emails"),
        BarColumn(),
        TextColumn("{task.completed}"),
        TimeElapsedColumn(),
        console=state.console,
        transient=True,
        disable=state.json or not state.console.is_terminal,
    ) as bar:
        task = bar.add_task("emails", total=None)
        queued = policies.fan_out(published.version, progress=lambda n: bar.advance(task, n))
    data = {**policies.view(published.version), "created": published.created, "emails_queued": queued}
    emit(
        state,
        data,
        lambda: (
            f"{doc} {version} {'published' if published.created else 'was published before'}"
            f" ({'major' if major else 'minor'}, effective {data['effective_at']}); {counted(queued, 'email', 'emails')} queued"
        ),
    )
    if not published.created:
        note(state, "same content as before: its emails were queued again; each address still gets one")


@app.command("list")
def list_versions(
    ctx: typer.Context,
    doc: Annotated[str | None, typer.Option("--doc", help="Only this document.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Every published version, with what is in effect now."""
    state = use(ctx, json_output)
    found = policies.versions(doc) if doc else sorted(policies.all_versions(), key=lambda v: (v.doc, v.effective_at))
    now = clock.now()
    current = {}
    for item in found:
        if item.effective_at <= now:
            current[item.doc] = item.version  # sorted by effective time: the last one wins
    rows = [
        {
            **{k: v for k, v in policies.view(item).items() if k != "summaries"},
            "languages": sorted(policies.view(item)["summaries"]),
            "emails_queued": int(item.recipients_queued or 0),
            "current": current.get(item.doc) == item.version,
        }
        for item in found
    ]

    def render() -> RenderableType:
        if not rows:
            return "no policy versions published"
        return table(
            ("doc", "version", "major", "effective", "current", "languages", "emails", "url", "sha-256"),
            (
                [
                    r["doc"],
                    r["version"],
                    "yes" if r["major"] else "no",
                    r["effective_at"],
                    "yes" if r["current"] else "",
                    r["languages"],
                    r["emails_queued"],
                    r["url"],
                    (r["text_sha256"] or "")[:16],
                ]
                for r in rows
            ),
        )

    emit(state, {"versions": rows}, render)


@app.command("verify")
def verify_text(
    ctx: typer.Context,
    doc: Annotated[str, typer.Option("--doc", help="The document.")],
    version: Annotated[str, typer.Option("--version", help="The version the copy claims to be.")],
    text_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A copy of the full text, byte for byte.")
    ],
    json_output: JsonFlag = False,
) -> None:
    """Check a copy of a policy's text against the SHA-256 recorded when the version was published.
    Exit code 1 when it differs (or none was recorded)."""
    state = use(ctx, json_output)
    recorded = policies.get(doc, version).text_sha256
    computed = policies.text_digest(_read_text(text_file))
    data = {
        "doc": doc,
        "version": version,
        "recorded_sha256": recorded,
        "file_sha256": computed,
        "matches": recorded == computed,
    }
    emit(
        state,
        data,
        lambda: (
            f"{doc} {version}: "
            + (
                "the file is the published text"
                if data["matches"]
                else f"the file is NOT the published text (recorded {recorded or 'nothing'}, file {computed})"
            )
        ),
    )
    if not data["matches"]:
        raise typer.Exit(1)
