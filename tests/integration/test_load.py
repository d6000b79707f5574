"""Load without loss, small: bench/load.py's client against a local stack of its own. `make load`
runs 2,000 requests and records the figures in docs/benchmarks.md; this keeps the property in
`make test` at a size this machine answers in well under a minute (RIGHTSDESK_LOAD_REQUESTS)."""

from __future__ import annotations

import os

import pytest

from bench import load

pytestmark = pytest.mark.integration

REQUESTS = int(os.environ.get("RIGHTSDESK_LOAD_REQUESTS") or 60)


def test_concurrent_submissions_and_verifications_lose_nothing_and_duplicate_nothing(launch_stack):
    stack = launch_stack()
    result = load.run(stack.base_url, total=REQUESTS, concurrency=20, wait_seconds=120)
    stack.stop()
    assert result["accepted"] == result["verified"] == result["delivered"] == REQUESTS, result
    assert (result["lost"], result["duplicated"], result["server_errors"]) == (0, 0, 0), result
    assert "Traceback" not in stack.logs()
