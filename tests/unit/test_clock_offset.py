"""The injectable clock offset is honoured only where the local runner and the tests install it:
a deployed Lambda tells wall-clock time whatever its environment or its table holds."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rightsdesk.kernel import clock

ROOT = Path(__file__).resolve().parents[2]
CLOCK = ROOT / "layers" / "core" / "rightsdesk" / "kernel" / "clock.py"
MOVERS = {"advance", "set_offset", "_offset_seconds"}


def clock_moves(path: Path) -> list[str]:
    """Each call of clock.advance / clock.set_offset, or a touch of its offset, in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in MOVERS
            and isinstance(node.value, ast.Name)
            and node.value.id == "clock"
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} clock.{node.attr}")
        elif (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").endswith("clock")
            and any(alias.name in MOVERS for alias in node.names)
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} from ...clock import")
    return found


def deployed_sources() -> list[Path]:
    """What a deployed stage runs: the layer and the functions (not local/, the CLI or tests)."""
    return [
        p
        for p in sorted((ROOT / "layers" / "core").rglob("*.py")) + sorted((ROOT / "functions").rglob("*.py"))
        if p != CLOCK
    ]


def test_the_check_finds_what_moves_the_clock():
    """Positive control: the local runner's dev route moves it, and the scan sees that."""
    assert clock_moves(ROOT / "local" / "dev_routes.py")


@pytest.mark.parametrize("path", deployed_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_deployed_code_moves_the_clock(path):
    assert clock_moves(path) == []


def test_a_deployed_stage_ignores_an_offset_in_its_environment():
    """The variable the clock once read, set in a prod-like environment: the clock stays wall-clock."""
    code = (
        "import json\nfrom rightsdesk.kernel import clock\nfrom rightsdesk.platform import config\n"
        "print(json.dumps({'offset': clock.offset_seconds(), 'now': clock.epoch()}))\n"
    )
    env = {
        "PYTHONPATH": str(ROOT / "layers" / "core"),
        "RIGHTSDESK_STAGE": "prod",
        "RIGHTSDESK_CLOCK_OFFSET_SECONDS": "86400",
        "CLOCK_OFFSET_SECONDS": "86400",
    }
    before = int(datetime.now(timezone.utc).timestamp())
    seen = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    )
    assert seen["offset"] == 0
    assert before <= seen["now"] <= int(datetime.now(timezone.utc).timestamp())


def test_the_tests_and_the_local_runner_move_it_through_the_clock_api():
    """The other side: an offset installed by a caller moves every reading (restored by conftest)."""
    start = clock.now()
    clock.advance(3600)
    assert (clock.now() - start).total_seconds() == pytest.approx(3600, abs=5)
    clock.set_offset(7200)
    assert clock.offset_seconds() == 7200
    with pytest.raises(ValueError):
        clock.advance(-1)
