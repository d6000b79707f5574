"""Turn any failure into one friendly line and exit code 1; `--json` gets it as JSON on stdout.

Set RIGHTSDESK_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup


class CliError(Exception):
    """A failure the operator can fix, worded for them."""

    def __init__(self, message: str, *, code: str = "cli_error"):
        super().__init__(message)
        self.message = message
        self.code = code


def describe(error: BaseException) -> tuple[str, str]:
    """(code, message) for the operator. Messages name resources and causes, never item contents."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )
    from pynamodb.exceptions import PynamoDBException

    from rightsdesk.kernel.errors import RightsdeskError

    if isinstance(error, (CliError, RightsdeskError)):
        return error.code, error.message
    if isinstance(error, PynamoDBException) and error.cause is not None:
        return describe(error.cause)
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return "no_credentials", "no AWS credentials found: configure a profile, or use --local"
    if isinstance(error, NoRegionError):
        return "no_region", "no AWS region: pass --region or configure one for your profile"
    if isinstance(error, EndpointConnectionError):
        endpoint = error.kwargs.get("endpoint_url", "AWS")
        return "unreachable", f"cannot reach {endpoint}; with --local, is `make run` running?"
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        code = detail.get("Code", "ClientError")
        if code == "ResourceNotFoundException":
            return "table_not_found", "no rights table there: check --stack / --region, or start the local run"
        return code, f"AWS refused {error.operation_name}: {code}: {detail.get('Message', '')}".rstrip(": ")
    return "unexpected", f"unexpected {type(error).__name__}; run again with RIGHTSDESK_DEBUG=1 for details"


def report(code: str, message: str, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"error": {"code": code, "message": message}}) + "\n")
    else:
        Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(message)}")


class RootGroup(TyperGroup):
    """Every command runs inside the root group's invoke, so one handler covers them all."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as error:
            if os.environ.get("RIGHTSDESK_DEBUG"):
                raise
            state = ctx.obj
            as_json = state.json if state is not None else bool(ctx.params.get("json_output"))
            report(*describe(error), as_json=as_json)
            raise typer.Exit(1) from None
