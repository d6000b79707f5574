"""The local stack every bench section measures against: free ports, no schedules, the abuse limits
raised (every caller is 127.0.0.1, local/loopback.py)."""

from __future__ import annotations

from pathlib import Path

from local import loopback
from local.stack import LocalStack


def bench_stack(root: Path) -> LocalStack:
    return LocalStack(
        root / "template.yaml",
        gateway_port=0,
        moto_port=0,
        receiver_port=0,
        schedules=False,
        parameter_overrides=loopback.LIMITS,
    )
