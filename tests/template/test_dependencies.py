"""One source of truth for dependency versions: constraints.txt.

The dev venv is installed from it (`make install`), layers/core/requirements.txt is generated from
it (scripts/layer_requirements.py, `make requirements`) and `make build` ships what that file says,
so the layer runs the versions the tests ran against. A hand edit or a forgotten regeneration fails
here rather than in Lambda.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / ".aws-sam" / "build" / "CoreLayer" / "python"


def _load_script():
    spec = importlib.util.spec_from_file_location("_layer_requirements", ROOT / "scripts" / "layer_requirements.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


pins_script = _load_script()


def test_the_layer_requirements_are_generated_from_the_constraints():
    committed = pins_script.LAYER_REQUIREMENTS.read_text(encoding="utf-8")
    assert committed == pins_script.render(), "layers/core/requirements.txt is stale: run `make requirements`"


def test_a_bumped_pin_makes_the_committed_file_stale():
    """Positive control for the test above: the generated file follows constraints.txt."""
    pins = pins_script.read_pins()
    bumped = {**pins, "jinja2": pins["jinja2"] + ".post1"}
    with pytest.raises(pins_script.PinError, match="jinja2 .* is installed, constraints.txt pins"):
        pins_script.render(bumped)  # the venv no longer matches: its metadata cannot be trusted
    assert "jinja2==" + pins["jinja2"] + "\n" in pins_script.render(pins)


def test_every_layer_package_and_what_it_needs_is_pinned():
    pins = pins_script.read_pins()
    for name in pins_script.LAYER_PACKAGES:
        without = {k: v for k, v in pins.items() if k != canonicalize_name(name)}
        with pytest.raises(pins_script.PinError, match=f"{canonicalize_name(name)} .*not pinned"):
            pins_script.closure(pins_script.LAYER_PACKAGES, without, pins_script.LAMBDA_ENVIRONMENT)
    layer = pins_script.closure(pins_script.LAYER_PACKAGES, pins, pins_script.LAMBDA_ENVIRONMENT)
    assert {"pydantic-core", "botocore", "markupsafe"} <= set(layer), "transitive dependencies are followed"
    assert not {"moto", "pytest", "aws-xray-sdk", "typer"} & set(layer), "nothing of the dev venv or the CLI ships"


def test_the_constraints_are_exact_pins_only(tmp_path):
    for line in ("jinja2>=3.1", "moto[server]==5.2.5", "six==1.17.0\nsix==1.17.0"):
        bad = tmp_path / "constraints.txt"
        bad.write_text(line + "\n")
        with pytest.raises(pins_script.PinError):
            pins_script.read_pins(bad)


def test_the_dev_venv_runs_the_pinned_versions():
    """Everything rightsdesk[dev] needs here is pinned and installed at its pin (`make install`).
    Packages nobody asked for (a tool someone added to their venv) are not the project's concern."""
    pins = {**pins_script.read_pins(), "rightsdesk": metadata.version("rightsdesk")}
    needed = pins_script.closure(["rightsdesk[dev]"], pins, default_environment())
    assert "moto" in needed and "pytest" in needed and "aws-lambda-powertools" in needed


def test_moto_is_pinned_exactly():
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins_script.read_pins()["moto"])


def test_the_built_layer_ships_the_generated_pins():
    if not LAYER.is_dir():
        pytest.fail(f"{LAYER.relative_to(ROOT)} is missing: run `make build` first")
    shipped = {}
    for info in LAYER.glob("*.dist-info"):
        fields = dict(line.split(": ", 1) for line in (info / "METADATA").read_text().splitlines()[:3] if ": " in line)
        shipped[canonicalize_name(fields["Name"])] = fields["Version"]
    wanted = dict(
        line.split("==")
        for line in pins_script.LAYER_REQUIREMENTS.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert shipped == wanted
