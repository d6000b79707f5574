"""Cold-start proxy: how long a function module takes to import, against a bare `import boto3`.

Each figure is the median of fresh interpreter runs, measured inside the child as the CPU time of
the import only (interpreter start-up is excluded from both sides). CPU time, not wall time: an
import is CPU-bound (its files are in the page cache after the warm-up run), and on a machine other
work shares, wall time also counted the moments the child waited for a core.

Each run imports at a different depth of Python calls (0 to 7 frames), both sides alike. On the
local Python 3.11 the cost of the same import swings by up to 40 ms with the call depth it starts
at: CPython 3.11 keeps its frames in a data stack of chunks, and a compile-heavy import (urllib3's
regular expressions) that recurses across a chunk boundary maps and unmaps a chunk on every
crossing, thousands of page faults that a few frames more or less avoid. A function's own import
order moved where that boundary fell, so one fixed depth made two orders of the same imports differ
by a sixth. The median over depths is the typical case, not the luckiest or unluckiest one.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import importlib.util, json, sys, time
target, depth = sys.argv[1], int(sys.argv[2])

def load():
    if target == "boto3":
        import boto3
    elif target.startswith("code:"):
        exec(target[5:], {})
    else:
        sys.path.insert(0, target.rsplit("/", 1)[0])  # as Lambda: the function's own folder comes first
        spec = importlib.util.spec_from_file_location("fn_app", target)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)

def at_depth(frames):
    return load() if frames == 0 else at_depth(frames - 1)

start = time.process_time()
at_depth(depth)
print(json.dumps({"seconds": time.process_time() - start}))
"""

DEPTHS = 8


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT / "layers" / "core"),
        AWS_DEFAULT_REGION="eu-central-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        RIGHTSDESK_HASH_KEY="bench",
        PYTHONDONTWRITEBYTECODE="",
    )
    return env


def time_import(target: str, runs: int, *, depth: int | None = None) -> float:
    samples = []
    for run in range(runs):
        frames = run % DEPTHS if depth is None else depth
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, target, str(frames)],
            capture_output=True,
            text=True,
            env=_environment(),
            check=True,
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    return statistics.median(samples)


def measure(functions: list[str], runs: int = 7) -> list[dict]:
    # one warm-up run each so byte-code compilation is not counted
    time_import("boto3", 1)
    baseline = time_import("boto3", runs)
    rows = []
    for name in functions:
        path = str(ROOT / "functions" / name / "app.py")
        time_import(path, 1)
        seconds = time_import(path, runs)
        rows.append({"function": name, "import_s": seconds, "boto3_s": baseline, "ratio": seconds / baseline})
    return rows


# What a function pays before its own code: the core's pynamodb models (every function reads or
# writes the table; pynamodb brings botocore) and powertools' Logger and Metrics. No Tracer since
# (the X-Ray SDK built two botocore clients for its sampler) and no boto3 at load (the core's
# clients are botocore's, rightsdesk.platform.aws_clients). Queue and stream functions add the Batch utility;
# the API functions build the Event Handler with validation, which imports pydantic.
_FLOOR = (
    "from rightsdesk.store.items import audience, audit, controllers, limits, notices, requests, sweeps\n"
    "from aws_lambda_powertools import Logger, Metrics\nLogger()\nMetrics()\n"
)
REFERENCES = {
    "(floor) the core's models, powertools Logger, Metrics": "code:" + _FLOOR,
    "(batch floor) + Batch utility": "code:"
    + _FLOOR
    + "from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType\n"
    "BatchProcessor(event_type=EventType.SQS)",
    "(API floor) + Event Handler with validation": "code:"
    + _FLOOR
    + "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
    "APIGatewayRestResolver(enable_validation=True)",
}


def functions() -> list[str]:
    """Every function folder (functions/<name>/app.py)."""
    return sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))


def measure_paired(names: list[str], runs: int = 7) -> list[dict]:
    """Each function against bare boto3, run by run in alternation: on a machine other work shares,
    both sides of a ratio see the same load. The ratio is the median of the per-run ratios."""
    targets = {**{name: str(ROOT / "functions" / name / "app.py") for name in names}, **REFERENCES}
    rows = []
    for name, target in targets.items():
        time_import(target, 1)  # byte-code compiled once, not counted
        pairs = [
            (time_import("boto3", 1, depth=d % DEPTHS), time_import(target, 1, depth=d % DEPTHS)) for d in range(runs)
        ]
        rows.append(
            {
                "function": name,
                "import_s": statistics.median(t for _, t in pairs),
                "boto3_s": statistics.median(b for b, _ in pairs),
                "ratio": statistics.median(t / b for b, t in pairs),
            }
        )
    return rows
