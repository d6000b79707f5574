"""Commands the docs give for the local run do what the docs say, run as written."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = REPO / "docs" / "operations.md"


def documented_block(heading: str) -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text.split(f"### {heading}", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_documented_ses_bounce_command_works(stack):
    block = documented_block("Simulating an SES bounce locally")
    command = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
    command = command.replace("localhost:3000", f"127.0.0.1:{urlsplit(stack.base_url).port}")
    done = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["function"] == "SesEventsFunction"
    assert answer["result"] == {"event_type": "Bounce", "suppressed": 1, "ignored": 0, "undelivered": None}
