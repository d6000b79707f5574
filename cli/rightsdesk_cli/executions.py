"""`rightsdesk requests execute | stop | receipt`: carry a request out through the connectors, stop a
run between connectors, and show (and verify) its signed receipt (docs/connectors.md).

Everything shown is ids, states and counts: a run's identities stay sealed in its record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group

from rightsdesk.connectors import execution, receipts
from rightsdesk.kernel.errors import NotFound
from rightsdesk.platform import config
from rightsdesk_cli.context import use
from rightsdesk_cli.output import JsonFlag, emit, table
from rightsdesk_cli.wiring import connect_executions

STEP_COLUMNS = ("stage", "connector", "state", "run", "result", "found", "erased", "kept", "remaining", "failure")
VERIFY_COMMAND = (
    "aws kms get-public-key --key-id {key} --query PublicKey --output text | base64 -d > receipt-key.der\n"
    "rightsdesk requests receipt {request_id} --out receipt.json\n"
    "python -m rightsdesk_cli.receipt_verify receipt.json --public-key receipt-key.der"
)


def _steps(view: execution.ExecutionView) -> Any:
    rows = [
        [
            step.get(name)
            for name in (
                "stage",
                "connector_id",
                "state",
                "run",
                "result",
                "found",
                "erased",
                "kept",
                "remaining",
                "failure",
            )
        ]
        for step in view.steps
    ]
    head = (
        f"request {view.request_id}: {'dry run' if view.dry_run else f'run {view.run}'} {view.status}"
        + (f" ({view.reason})" if view.reason else "")
        + (f"; starts after {view.not_before}" if view.status == execution.WAITING and view.not_before else "")
    )
    return Group(head, table(STEP_COLUMNS, rows))


def register(app: typer.Typer) -> None:
    @app.command("execute")
    def execute(
        ctx: typer.Context,
        request_id: Annotated[str, typer.Argument(help="An erasure, access or portability request.")],
        dry_run: Annotated[
            bool,
            typer.Option("--dry-run", help="Only show which connector would touch how many records; writes nothing."),
        ] = False,
        json_output: JsonFlag = False,
    ) -> None:
        """Run the request's connectors (a stopped, failed or parked run resumes, skipping the
        connectors already done; a run waiting out the grace period starts now)."""
        state = connect_executions(use(ctx, json_output))
        view = execution.start(request_id, actor=state.operator, dry_run=dry_run)
        emit(state, {"execution": view.to_dict()}, lambda: _steps(view))

    @app.command("stop")
    def stop(
        ctx: typer.Context,
        request_id: Annotated[str, typer.Argument(help="A request whose connectors run or wait.")],
        json_output: JsonFlag = False,
    ) -> None:
        """Stop the request's run between connectors (a waiting one never starts); `execute` resumes it."""
        state = connect_executions(use(ctx, json_output))
        view = execution.stop(request_id, actor=state.operator)
        emit(state, {"execution": view.to_dict()}, lambda: _steps(view))

    @app.command("receipt")
    def receipt(
        ctx: typer.Context,
        request_id: Annotated[str, typer.Argument(help="A request whose connectors ran.")],
        out: Annotated[
            Path | None, typer.Option("--out", help="Write the receipt (JSON) here, for an auditor.")
        ] = None,
        json_output: JsonFlag = False,
    ) -> None:
        """The request's signed, hash-chained receipt, verified here with the signing key's public key."""
        state = connect_executions(use(ctx, json_output))
        chain = receipts.entries(request_id)
        if not chain:
            raise NotFound(f"request {request_id} has no receipt (its connectors have not run)", code="no_receipt")
        document = receipts.export(request_id, chain)
        signer = receipts.KmsSigner(config.receipt_signing_key_id())
        public = signer.public_key_der()
        verification = receipts.verify(document, public)
        if out is not None:
            out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        command = VERIFY_COMMAND.format(key=signer.key_id, request_id=request_id)
        data = {
            "receipt": document,
            "verification": verification.as_dict(),
            "public_key_pem": receipts.public_key_pem(public),
            "verify_offline": command,
        }

        def render() -> Any:
            rows = []
            for entry in document["entries"]:
                body = entry["body"]
                if body.get("entry") == "seal":
                    totals = body["summary"]
                    results = ", ".join(f"{result} {count}" for result, count in totals["results"].items())
                    rows.append(
                        [
                            body["seq"],
                            f"seal ({totals['connectors']} connectors)",
                            "",
                            results,
                            "",
                            totals["erased"],
                            totals["remaining"],
                            body["recorded_at"],
                        ]
                    )
                    continue
                counts = body["counts"]
                rows.append(
                    [
                        body["seq"],
                        body["connector"]["id"],
                        body["action"],
                        body["result"],
                        counts["found"],
                        counts["erased"],
                        body["remaining"],
                        body["recorded_at"],
                    ]
                )
            verdict = (
                "verified with the public key" + ("" if verification.sealed else " (not sealed yet)")
                if verification.valid
                else "NOT VERIFIED: " + "; ".join(f"#{p.position} {p.code}" for p in verification.problems)
            )
            return Group(
                table(("seq", "connector", "action", "result", "found", "erased", "remaining", "at"), rows),
                f"{len(document['entries'])} entries, {verdict}",
                receipts.RESIDUAL_COPIES["text"],
                "Verify offline:\n" + command,
            )

        emit(state, data, render)
        if not verification.valid:
            raise typer.Exit(1)
