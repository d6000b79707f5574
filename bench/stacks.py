"""The local stack every bench section measures against: free ports, no schedules, the abuse limits
raised (every caller is 127.0.0.1, local/loopback.py), and the consumers at idle CPU priority, as
in `make run` and `make load` (local/zygote.py): a handler's figures are its own, not those of the
deliveries and mails earlier calls set off."""

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
        background_priority="idle",
    )
