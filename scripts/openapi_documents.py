"""The published contracts, from the code: `make openapi` writes them to docs/openapi/.

- controller-api.json  the controller API's OpenAPI 3.1 document, webhook event catalog included
                       (what GET /v1/controller/openapi.json serves)
- public-api.json      the public API's (what GET /openapi.json serves)
- connector-callback-api.json  the HTTP connector's callback route (ConnectorCallbackFunction, on the
                       public API; a function of its own, so a document of its own)
- events.snapshot.json every event type's JSON Schema as last published: the reference of the
                       catalog's compatibility rule (rightsdesk.outbound.event_compatibility)

Each handler module is imported in a child process, as Lambda imports it, so its module-level
settings stay out of this process. A breaking change to a published event type is refused before
anything is written: give the changed event a new type name (`….v2`) instead.

    python -m scripts.openapi_documents           write the three files
    python -m scripts.openapi_documents --check   exit 1 if a committed file differs from the code
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "openapi"
CONTROLLER_FILE = DOCS / "controller-api.json"
PUBLIC_FILE = DOCS / "public-api.json"
CALLBACK_FILE = DOCS / "connector-callback-api.json"
SNAPSHOT_FILE = DOCS / "events.snapshot.json"

_CHILD = r"""
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1].rsplit("/", 1)[0])
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if sys.argv[2] == "routes":
    app = module.app
    print(json.dumps([[r.method, r.openapi_path, r.include_in_schema] for r in app._static_routes + app._dynamic_routes]))
else:
    from rightsdesk.outbound import api_documents
    print(json.dumps(getattr(api_documents, sys.argv[2])(module.app)))
"""

# function folder -> document
APPS = {"controller_api": "controller_api", "public_api": "public_api", "connector_callback": "connector_callback"}


def generate(function: str) -> dict:
    """The OpenAPI document of functions/<function>/app.py, built as its own route serves it."""
    return _child(function, APPS[function])


def routes(function: str) -> list[tuple[str, str, bool]]:
    """Every route functions/<function>/app.py registers, its routers' included: (method, path as
    OpenAPI writes it, whether the document includes it)."""
    return [(method, path, included) for method, path, included in _child(function, "routes")]


def _child(function: str, what: str):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "core"), str(ROOT)]),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "RIGHTSDESK_HASH_KEY": "openapi-only",
    }
    env.pop("CORS_ALLOW_ORIGINS", None)  # the document does not depend on them
    app = ROOT / "functions" / function / "app.py"
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(app), what],
        capture_output=True,
        text=True,
        env=env,
        cwd=app.parent,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def event_schemas() -> dict:
    sys.path.insert(0, str(ROOT / "layers" / "core"))
    from rightsdesk.outbound import event_catalog

    return event_catalog.schemas()


def serialized(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, str]:
    return {
        CONTROLLER_FILE: serialized(generate("controller_api")),
        PUBLIC_FILE: serialized(generate("public_api")),
        CALLBACK_FILE: serialized(generate("connector_callback")),
        SNAPSHOT_FILE: serialized(event_schemas()),
    }


def main(argv: list[str]) -> int:
    from rightsdesk.outbound import event_compatibility

    files = expected_files()
    if "--check" in argv:
        stale = [_shown(path) for path, text in files.items() if _read(path) != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run `make openapi`", file=sys.stderr)
            return 1
        return 0
    published = json.loads(_read(SNAPSHOT_FILE) or "{}")
    breaking = event_compatibility.breaking_changes(published, event_schemas())
    if breaking:
        print(
            "refused: these changes break published webhook events (docs/controller-api.md, Compatibility);\n"
            "keep the published schema and add the changed event under a new type name (….v2):\n  "
            + "\n  ".join(breaking),
            file=sys.stderr,
        )
        return 1
    DOCS.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(path)}")
    return 0


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
