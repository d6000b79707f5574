"""Reading a SAM template: CloudFormation short tags, Globals merged into functions and APIs."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TemplateError(Exception):
    """The template cannot be read or uses something the local run cannot stand in for."""


class _CfnLoader(_Loader):  # type: ignore[misc, valid-type]
    pass


def _short_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict:
    # `!GetAtt A.B` is the only short form whose scalar differs from the long form's value.
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_tag)


def deep_merge(base: Any, override: Any) -> Any:
    """SAM Globals semantics, simplified: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


@dataclass
class Template:
    path: Path
    body: dict
    parameters: dict = field(default_factory=dict)
    conditions: dict = field(default_factory=dict)
    mappings: dict = field(default_factory=dict)
    globals: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    def of_type(self, *types: str) -> dict[str, dict]:
        return {lid: res for lid, res in self.resources.items() if res.get("Type") in types}

    def function_properties(self, logical_id: str) -> dict:
        own = self.resources[logical_id].get("Properties") or {}
        return deep_merge(self.globals.get("Function") or {}, own)

    def api_properties(self, logical_id: str | None) -> dict:
        """Properties of an AWS::Serverless::Api, or of the implicit API when logical_id is None."""
        own = (self.resources.get(logical_id, {}).get("Properties") or {}) if logical_id else {}
        return deep_merge(self.globals.get("Api") or {}, own)


def load(path: str | Path) -> Template:
    path = Path(path).resolve()
    try:
        body = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 (safe loader subclass)
    except OSError as error:
        raise TemplateError(f"cannot read {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise TemplateError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(body, dict) or not isinstance(body.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources section")
    return Template(
        path=path,
        body=body,
        parameters=body.get("Parameters") or {},
        conditions=body.get("Conditions") or {},
        mappings=body.get("Mappings") or {},
        globals=body.get("Globals") or {},
        resources=body["Resources"],
    )
