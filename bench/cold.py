"""A cold PublicApiFunction: a fresh interpreter imports the handler, then serves its first
submission, its first status call and a second submission, against the bench stack's moto.

Run with the shared botocore data (rightsdesk.platform.sessions, the default) and, for comparison, with a
botocore session of its own per pynamodb connection, as pynamodb does by itself: then every kind of
item the first requests touch costs a parse of endpoints.json and the DynamoDB model again.
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
shared = sys.argv[1] == "shared"
started = time.perf_counter()
import rightsdesk.store.items.table
if not shared:
    import botocore.session, pynamodb.connection.base as base
    base.get_session = botocore.session.get_session
spec = importlib.util.spec_from_file_location("app", "functions/public_api/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
from bench.events import api_event

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "cold", 512, "r"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:cold"
    def get_remaining_time_in_millis(self):
        return 10000

def timed(event):
    began = time.perf_counter()
    answer = app.lambda_handler(event, Context())
    return answer, (time.perf_counter() - began) * 1000

imported = (time.perf_counter() - started) * 1000
submit = lambda n: api_event("POST", "/v1/requests", "/v1/requests",
                             body={"site": "demo", "type": "access", "email": f"cold-{n}@example.org"})
answer, first = timed(submit(time.time_ns()))
rid = json.loads(answer["body"])["request_id"]
_, status = timed(api_event("GET", "/v1/requests/{id}", f"/v1/requests/{rid}", path_parameters={"id": rid},
                            headers={"Authorization": "Bearer rst_wrong"}))
_, second = timed(submit(time.time_ns()))
print(json.dumps({"import_ms": imported, "first_submit_ms": first, "first_status_ms": status, "second_submit_ms": second}))
"""


def _run(mode: str) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "layers" / "core"), str(ROOT / "functions" / "public_api"), str(ROOT)]
        ),
        "POWERTOOLS_SERVICE_NAME": "public-api",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, env=env, cwd=ROOT, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(runs: int = 3) -> dict[str, dict[str, float]]:
    """mode -> median of each figure. The bench's LocalStack must be running (its environment is set)."""
    results = {}
    for mode in ("shared", "per-connection"):
        samples = [_run(mode) for _ in range(runs)]
        results[mode] = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    return results
