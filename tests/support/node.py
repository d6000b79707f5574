"""Node.js for the tests of the Node example receiver (examples/node-receiver).

Node is on the machines that run `make test`. Without it a local run skips the Node cases; under
CI=true (.ci/run) a missing node or npm is a failure, never a skip. npm's cache lives under .local/
(ignored by git), so a clean clone in CI needs nothing outside the checkout.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_EXAMPLE = REPO / "examples" / "node-receiver"
NPM_CACHE = REPO / ".local" / "npm-cache"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def require_node() -> tuple[str, str]:
    """The paths of node and npm; skips the test when node is absent on a developer's machine."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    if in_ci() or node:  # under CI both must be there; node without npm is a broken install
        pytest.fail(f"{'npm' if node else 'node'} is not installed: the Node receiver cannot be checked")
    pytest.skip("node is not installed on this machine: the Node receiver is checked in CI")


def npm_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (else this process's) with npm's cache under .local/ and no update check."""
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    return {
        **(os.environ if env is None else env),
        "npm_config_cache": str(NPM_CACHE),
        "npm_config_update_notifier": "false",
    }
