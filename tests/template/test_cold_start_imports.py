"""What a cold start loads: each handler imported alone in a fresh interpreter, as Lambda imports it.

Import time stays under 1.5 times bare boto3: these are the libraries the functions shed at load.
A module-level import that brings one back fails here rather than only in `make bench`.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import pytest

from tests.template.test_template import ROOT

API_FUNCTIONS = {"public_api", "controller_api", "connector_callback"}
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))

_LOADED_BY_IMPORT = r"""
import importlib.util, json, sys
app = sys.argv[1]
sys.path.insert(0, app.rsplit("/", 1)[0])
spec = importlib.util.spec_from_file_location("handler", app)
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(json.dumps(sorted(name for name in sys.modules if "." not in name or name.startswith("aws_lambda_powertools."))))
"""


@functools.cache
def loaded_at_import(function: str) -> set[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "core"),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "RIGHTSDESK_HASH_KEY": "testing",
    }
    run = subprocess.run(
        [sys.executable, "-c", _LOADED_BY_IMPORT, str(ROOT / "functions" / function / "app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return set(json.loads(run.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_cold_start_loads_no_boto3_idempotency_or_templates(function):
    """The core's clients are botocore's (s3transfer and boto3's resources cost a seventh of bare boto3);
    powertools' idempotency utility (which imports boto3), Jinja2 and Babel load on first use."""
    loaded = loaded_at_import(function)
    assert loaded.isdisjoint({"boto3", "s3transfer", "jinja2", "babel", "aws_xray_sdk"}), sorted(
        loaded & {"boto3", "s3transfer", "jinja2", "babel", "aws_xray_sdk"}
    )
    assert "aws_lambda_powertools.utilities.idempotency" not in loaded
    assert "botocore" in loaded, "the check sees what the handler imported"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_only_the_api_functions_load_pydantic(function):
    """Requests are read through rightsdesk.store.queries; pydantic comes with the Event Handler's validation."""
    assert ("pydantic" in loaded_at_import(function)) == (function in API_FUNCTIONS)


_CORE_LOADED_BY_IMPORT = _LOADED_BY_IMPORT.replace(
    'if "." not in name or name.startswith("aws_lambda_powertools.")', 'if name.startswith("rightsdesk.")'
)


@functools.cache
def core_loaded_at_import(function: str) -> set[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "core"),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "RIGHTSDESK_HASH_KEY": "testing",
    }
    run = subprocess.run(
        [sys.executable, "-c", _CORE_LOADED_BY_IMPORT, str(ROOT / "functions" / function / "app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return set(json.loads(run.stdout.strip().splitlines()[-1]))


def test_the_public_api_loads_at_import_only_what_its_form_and_api_need():
    """The policy archive, unsubscribe, the export's document and the deadline watch are loaded by
    the routes that use them (their modules and the breach records behind the subject's holdings);
    the form's pydantic models are built by the first submit or verify, not by a status page; the
    purge by a cancellation (or an expired code's failed write). A submission looks its site's controller up (rightsdesk.routing.controller_lookup): the registry's
    changes, the API keys, webhook secrets and their sealing, the SSRF guard and the operator's
    identity are none of the public API's business."""
    loaded = core_loaded_at_import("public_api")
    assert "rightsdesk.intake.submissions" in loaded, "the check sees the core modules the handler imported"
    assert "rightsdesk.routing.controller_lookup" in loaded
    on_use = {
        "rightsdesk.own_data.subject_data",
        "rightsdesk.notices.breaches",
        "rightsdesk.routing.deadline_watch",
        "rightsdesk.notices.policies",
        "rightsdesk.notices.notice_pages",
        "rightsdesk.audience.unsubscribe",
        "rightsdesk.intake.forms",
        "rightsdesk.store.deletion",
    }
    never = {
        "rightsdesk.routing.registry",
        "rightsdesk.platform.credentials",
        "rightsdesk.platform.sealing",
        "rightsdesk.platform.ssrf",
        "rightsdesk.platform.operator_identity",
        "rightsdesk.kernel.deadline_state",  # a deadline's standing: the deadline watch's and the CLI's
    }
    assert loaded.isdisjoint(on_use | never), sorted(loaded & (on_use | never))


def test_the_controller_api_loads_at_import_only_what_every_route_needs():
    """The delivery log (its routes import it on first call; they are declared with
    rightsdesk.routing.delivery_words), delivery (a pull controller's first fetch), the deadline
    watch (an extension), the note limits (a note to the subject) and the registry's changes (a
    secret rotation) are loaded by the calls that use them."""
    loaded = core_loaded_at_import("controller_api")
    assert "rightsdesk.routing.controller_requests" in loaded, "the check sees the core modules the handler imported"
    assert "rightsdesk.routing.delivery_words" in loaded
    on_use = {
        "rightsdesk.routing.delivery_log",
        "rightsdesk.store.items.deliveries",
        "rightsdesk.routing.delivery",
        "rightsdesk.routing.deadline_watch",
        "rightsdesk.kernel.deadline_state",
        "rightsdesk.store.limits",
        "rightsdesk.routing.registry",
        "rightsdesk.routing.controller_forms",
    }
    assert loaded.isdisjoint(on_use), sorted(loaded & on_use)


# The pydantic models a handler's import built, but pydantic's and powertools' own.
_MODELS_BUILT_BY_IMPORT = r"""
import importlib.util, json, sys
app = sys.argv[1]
sys.path.insert(0, app.rsplit("/", 1)[0])
spec = importlib.util.spec_from_file_location("handler", app)
spec.loader.exec_module(importlib.util.module_from_spec(spec))
import pydantic

def built(model):
    own = model.__module__.split(".")[0] not in ("pydantic", "aws_lambda_powertools")
    return [model.__name__] * own + [name for sub in model.__subclasses__() for name in built(sub)]

print(json.dumps(sorted(built(pydantic.BaseModel))))
"""


@pytest.mark.parametrize("function", sorted(API_FUNCTIONS))
def test_the_api_functions_build_no_body_model_at_import(function):
    """The bodies' pydantic models (the public API's form and code; the controller API's status
    report, bulk redelivery and GPC signal) are built by the first request to their route, which
    resolves its signature, not when the function starts (rightsdesk.intake.forms,
    rightsdesk.routing.controller_forms, rightsdesk.audience.forms)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "core"),
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "RIGHTSDESK_HASH_KEY": "testing",
    }
    app = ROOT / "functions" / function / "app.py"
    run = subprocess.run(
        [sys.executable, "-c", _MODELS_BUILT_BY_IMPORT, str(app)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
