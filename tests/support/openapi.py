"""The controller API's OpenAPI document, built from its handler module.

ControllerApiFunction serves no /openapi.json (its routes sit behind the authorizer and its
reference is docs/controller-api.md), but its event handler knows its routes, parameters and
documented answers as PublicApiFunction's does. The module is imported in a child process, so its
module-level settings do not leak into the tests' own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("controller_api_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(module.app.get_openapi_json_schema(title="rightsdesk controller API", version="1.0.0"))
"""


@lru_cache(maxsize=1)
def controller_openapi() -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "core"), str(ROOT)]),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "RIGHTSDESK_HASH_KEY": "openapi-only",
    }
    app = ROOT / "functions" / "controller_api" / "app.py"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(app)],
        capture_output=True,
        text=True,
        env=env,
        cwd=app.parent,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout[out.stdout.index("{") :])
