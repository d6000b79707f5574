"""Reading a SAM template: CloudFormation short tags, Globals merged into functions and APIs."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAPPING_TYPE = "AWS::Lambda::EventSourceMapping"


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

    def event_sources(self, logical_id: str) -> dict[str, dict]:
        return event_sources(self.body, logical_id)

    def api_properties(self, logical_id: str | None) -> dict:
        """Properties of an AWS::Serverless::Api, or of the implicit API when logical_id is None."""
        own = (self.resources.get(logical_id, {}).get("Properties") or {}) if logical_id else {}
        return deep_merge(self.globals.get("Api") or {}, own)


def event_sources(body: dict, logical_id: str) -> dict[str, dict]:
    """A function's SAM events, and the AWS::Lambda::EventSourceMapping resources that feed it
    written as the SAM events they stand for (`{"Type": "SQS", "Properties": {"Queue": ...}}`),
    named as SAM names its own: the mapping's logical id without the function's.

    The template declares queue and stream triggers as mappings rather than SAM events because
    SAM attaches a managed policy granting its poller actions on every queue or stream ("*")."""
    resources = body.get("Resources") or {}
    own = (resources.get(logical_id) or {}).get("Properties") or {}
    events = dict(own.get("Events") or {})
    for mapping_id, mapping in resources.items():
        if mapping.get("Type") != MAPPING_TYPE:
            continue
        properties = dict(mapping.get("Properties") or {})
        if properties.pop("FunctionName", None) not in ({"Ref": logical_id}, {"Fn::GetAtt": [logical_id, "Arn"]}):
            continue
        source = properties.pop("EventSourceArn", None)
        kind = _mapped_kind(resources, source)
        if kind is None:
            raise TemplateError(f"{mapping_id}: EventSourceArn must be !GetAtt of a queue's Arn or a table's StreamArn")
        name = mapping_id.removeprefix(logical_id) or mapping_id
        events[name] = {"Type": kind, "Properties": {("Queue" if kind == "SQS" else "Stream"): source, **properties}}
    return events


def _mapped_kind(resources: dict, source: Any) -> str | None:
    target = source.get("Fn::GetAtt") if isinstance(source, dict) else None
    if not isinstance(target, list) or len(target) != 2:
        return None
    resource_type = (resources.get(target[0]) or {}).get("Type")
    if resource_type == "AWS::SQS::Queue" and target[1] == "Arn":
        return "SQS"
    if resource_type == "AWS::DynamoDB::Table" and target[1] == "StreamArn":
        return "DynamoDB"
    return None


def read(path: str | Path) -> dict:
    """The template as a dict, short tags in their long form (`!GetAtt A.B` -> {"Fn::GetAtt": [A, B]})."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 (safe loader subclass)


def load(path: str | Path) -> Template:
    path = Path(path).resolve()
    try:
        body = read(path)
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
