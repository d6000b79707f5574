"""rightsdesk.platform.config is the one reader of the environment: no other core module and no
handler reads (or writes) os.environ, so every variable a deployment sets is found in one module."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from rightsdesk.kernel import retention
from rightsdesk.platform import config

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "core" / "rightsdesk"
CONFIG = CORE / "platform" / "config.py"
ENVIRONMENT_CALLS = {"getenv", "putenv", "unsetenv", "environ", "environb", "getenvb"}


def environment_reads(path: Path) -> list[str]:
    """Each place the module touches the process environment: os.environ / os.getenv & co, or a
    `from os import environ`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ENVIRONMENT_CALLS
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} os.{node.attr}")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in ENVIRONMENT_CALLS for alias in node.names)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} from os import ...")
    return found


def sources() -> list[Path]:
    return sorted(CORE.rglob("*.py")) + sorted((ROOT / "functions").glob("*/*.py"))


def test_the_check_finds_a_read_of_the_environment():
    """Positive control: config itself reads it, so the scan sees what it looks for."""
    assert environment_reads(CONFIG)


@pytest.mark.parametrize("path", [p for p in sources() if p != CONFIG], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_core_module_or_handler_reads_the_environment_but_config(path):
    assert environment_reads(path) == []


def test_a_deployments_retention_override_reaches_the_rule(monkeypatch):
    monkeypatch.setenv("RETENTION_VERIFICATION_CODE_SECONDS", "600")
    assert retention.keep_for(retention.Rule.VERIFICATION_CODE) == timedelta(seconds=600)
    monkeypatch.delenv("RETENTION_VERIFICATION_CODE_SECONDS")
    assert retention.keep_for(retention.Rule.VERIFICATION_CODE) == timedelta(minutes=15)


def test_the_kernel_alone_gets_the_deployments_overrides():
    """The kernel reads no environment; config installs its lookup when the rightsdesk package is
    imported, so a process that imports only the kernel counts the deployment's periods too."""
    code = (
        "from rightsdesk.kernel import retention\nprint(retention.rule(retention.Rule.SKELETON).keep.days)\n"
        "retention.use_overrides(None)\n"
        "try:\n    retention.rule(retention.Rule.SKELETON)\nexcept RuntimeError:\n    print('refused')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "layers" / "core"), "RETENTION_SKELETON_SECONDS": "86400"},
    )
    assert out.stdout.split() == ["1", "refused"]


def test_region_follows_the_environment_and_use_region(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert config.aws_region() == "eu-west-1"
    config.use_region("eu-north-1")
    assert config.aws_region() == "eu-north-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert config.aws_region() == config.DEFAULT_REGION


def test_per_function_settings_are_read_when_asked(monkeypatch):
    """The local runner sets a function's own variables only while its module imports: these
    accessors must not answer from a cache made before."""
    monkeypatch.setenv("DELIVERY_MAX_ATTEMPTS", "12")
    monkeypatch.setenv("MAIL_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("SES_MAX_SEND_RATE", "14")
    monkeypatch.setenv("NOTIFIER_CONCURRENCY", "2")
    assert (config.delivery_max_attempts(3), config.mail_max_attempts(3)) == (12, 5)
    assert (config.ses_max_send_rate(), config.notifier_concurrency()) == (14.0, 2)
    for name in ("DELIVERY_MAX_ATTEMPTS", "MAIL_MAX_ATTEMPTS", "SES_MAX_SEND_RATE", "NOTIFIER_CONCURRENCY"):
        monkeypatch.delenv(name)
    assert (config.delivery_max_attempts(3), config.mail_max_attempts(4)) == (3, 4)
    assert (config.ses_max_send_rate(), config.notifier_concurrency()) == (0.0, 1)
