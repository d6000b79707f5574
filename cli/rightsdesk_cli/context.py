"""Where a command's data lives: the local run, or a deployed stack with the operator's credentials.

Nothing is configured until a command needs data, so `--help` and usage errors work offline and
without credentials. The core reads its AWS settings from the environment (boto3, pynamodb and
`rightsdesk.platform.config.aws_region`), so the target is set there before the first client is created.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from rightsdesk_cli.errors import CliError

if TYPE_CHECKING:
    from rightsdesk.platform.operator_identity import OperatorIdentity

LOCAL_REGION = "eu-central-1"
LOCAL_TABLE = "rightsdesk-local-RightsTable"
TABLE_OUTPUT = "RightsTableName"
# Piped output is read by people with grep and by scripts: don't cut ids to a guessed 80 columns.
PIPE_WIDTH = 200


@dataclass
class Context:
    local: bool = False
    json: bool = False
    stack: str | None = None
    region: str | None = None
    table_name: str | None = field(default=None, init=False)
    local_health: dict | None = field(default=None, init=False, repr=False)
    _console: Console | None = field(default=None, init=False, repr=False)
    _operator: OperatorIdentity | None = field(default=None, init=False, repr=False)

    @property
    def console(self) -> Console:
        if self._console is None:
            width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS") or PIPE_WIDTH)
            self._console = Console(width=width, highlight=False)
        return self._console

    @property
    def operator(self) -> OperatorIdentity:
        """Who runs this command, for the audit trail (rightsdesk.platform.operator_identity): pass it
        as `actor=` to every core function that writes an audit event. Resolved on first use, once
        per run: one STS GetCallerIdentity (with --local the OS user, no STS call)."""
        if self._operator is None:
            self._operator = self._identify()
        return self._operator

    def _identify(self) -> OperatorIdentity:
        from rightsdesk.platform import operator_identity
        from rightsdesk_cli.wiring import connect_hash_key

        self.connect()
        connect_hash_key(self)  # the ARN is kept only as a keyed hash under the stack's key
        if self.local:
            return operator_identity.local(_os_user())
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # Needs no IAM permission. Its UserId repeats the session name: only the ARN is read.
            caller = boto3.client("sts").get_caller_identity()
        except (BotoCoreError, ClientError) as error:
            # Nothing is written unattributed: the command stops before its first write.
            raise CliError(
                f"cannot tell who you are (STS GetCallerIdentity: {type(error).__name__}); nothing was changed",
                code="no_identity",
            ) from None
        return operator_identity.from_caller(str(caller["Arn"]))

    def connect(self) -> Context:
        """Point the core at the target; idempotent, so every command may call it."""
        if self.table_name is None:
            table = self._connect_local() if self.local else self._connect_aws()
            self._bind(table)
        return self

    def _connect_local(self) -> str:
        """The local run `make run` started with the same settings, checked before anything is read:
        its gateway answers, and the moto it uses is the one this CLI would write to."""
        from rightsdesk.kernel import clock
        from rightsdesk.platform import local_endpoints

        env = os.environ
        try:
            gateway, moto = local_endpoints.gateway_url(), local_endpoints.moto_url()
        except local_endpoints.BadPortSetting as error:
            raise CliError(str(error), code="local_settings") from None
        health = self._local_health(gateway)
        theirs = str(health.get("moto") or "")
        if not local_endpoints.same_endpoint(theirs, moto):
            raise CliError(
                f"the local run at {gateway} uses moto at {theirs}, but this CLI is set to {moto}; nothing was "
                f"read or written. {local_endpoints.settings_hint(local_endpoints.MOTO, theirs)}",
                code="local_mismatch",
            )
        self.local_health = health
        env["AWS_ENDPOINT_URL"] = moto
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = str(health.get("region") or LOCAL_REGION)
        # moto takes any key; the operator's real ones must never be sent to it.
        env["AWS_ACCESS_KEY_ID"] = env["AWS_SECRET_ACCESS_KEY"] = "testing"  # noqa: S105 - moto's dummy
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(name, None)
        # The local run moves its clock forward; read what the handlers read, or expiry differs.
        clock.set_offset(float((health.get("clock") or {}).get("offset_seconds") or 0))
        table = (health.get("resources") or {}).get("RightsTable") or {}
        return str(table.get("name") or LOCAL_TABLE)

    @staticmethod
    def _local_health(gateway: str) -> dict:
        from rightsdesk.platform import local_endpoints

        url = f"{gateway}/_dev/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local dev URL
                health = json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            health = None
        if not isinstance(health, dict) or "moto" not in health or "resources" not in health:
            raise CliError(
                f"the local run is not answering at {gateway}: start it with `make run`, or, if it runs on "
                f"another port, {local_endpoints.settings_hint(local_endpoints.GATEWAY)}",
                code="local_unreachable",
            )
        return health

    def _connect_aws(self) -> str:
        import boto3

        session = boto3.session.Session(region_name=self.region)
        region = session.region_name
        if not region:
            raise CliError("no AWS region: pass --region or configure one for your profile", code="no_region")
        # The core's own clients read the region from the environment, not from this session.
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region
        if self.stack:
            return self._table_of_stack(session, self.stack)
        table = os.environ.get("RIGHTSDESK_TABLE")
        if not table:
            raise CliError(
                "which deployment? pass --stack NAME (or set RIGHTSDESK_TABLE), or --local", code="no_target"
            )
        return table

    @staticmethod
    def _table_of_stack(session, stack: str) -> str:
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        for output in described.get("Outputs", []):
            if output["OutputKey"] == TABLE_OUTPUT:
                return output["OutputValue"]
        raise CliError(f"stack {stack} has no output {TABLE_OUTPUT}; is it a rightsdesk stack?", code="not_rightsdesk")

    def _bind(self, table: str) -> None:
        from rightsdesk.platform import config
        from rightsdesk.store.items.table import bind_table, set_region

        os.environ["RIGHTSDESK_TABLE"] = table
        config.reload()
        bind_table(table)
        # Model regions were fixed when rightsdesk.store.items was imported, maybe before --region.
        set_region(os.environ["AWS_REGION"])
        self.table_name = table


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


def use(ctx: typer.Context, json_output: bool = False) -> Context:
    """The root callback's Context, connected; a command's own `--json` counts like the global one."""
    state: Context = ctx.find_root().obj
    state.json = state.json or json_output
    return state.connect()
