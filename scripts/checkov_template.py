"""Write template.yaml as checkov can read it: .aws-sam/checkov/template.json.

checkov 3 fails on this template with a TypeError: it substitutes parameter defaults for every
`Ref`, then merges `Globals` into each function, and a variable set both in Globals and by a
function (PUBLIC_BASE_URL) leaves it pointing into a value that is no longer there. Here the
globals' environment is merged into each function first, exactly as SAM merges it (the function's
own value wins), and Globals keeps the rest. Everything else, the inline skips in each resource's
`Metadata.checkov` included, is copied as it is. Run with the checkov tool venv's python.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from checkov.cloudformation.parser import parse

ROOT = Path(__file__).resolve().parent.parent


def expanded(path: Path) -> dict:
    template, _ = parse(str(path))
    template = json.loads(json.dumps(template, default=str))  # plain dicts, no line-number wrappers
    function_globals = (template.get("Globals") or {}).get("Function") or {}
    shared = ((function_globals.pop("Environment", None) or {}).get("Variables")) or {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource.setdefault("Properties", {})
            own = (props.get("Environment") or {}).get("Variables") or {}
            props["Environment"] = {"Variables": {**shared, **own}}
    return template


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "template.yaml"
    target = ROOT / ".aws-sam" / "checkov" / "template.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(expanded(source), indent=1))
    print(target.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
