"""A small CloudFormation intrinsic-function resolver, enough for environments and event sources."""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Protocol

from local.template import Template


class Unresolvable(Exception):
    """An intrinsic the local run cannot give a value to (an import, an unknown name)."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class ResourceLookup(Protocol):
    def ref(self, logical_id: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...


class Resolver:
    def __init__(
        self,
        template: Template,
        parameters: dict[str, Any],
        resources: ResourceLookup,
        *,
        region: str,
        account_id: str,
        stack_name: str = "rightsdesk-local",
    ):
        self.template = template
        self.parameters = parameters
        self.resources = resources
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        self._conditions: dict[str, bool] = {}

    # ------------------------------------------------------------------ entry points
    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [value for value in (self.resolve(item) for item in node) if value is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                function = getattr(self, "_fn_" + key[4:].lower(), None)
                if function is None:
                    raise Unresolvable(f"{key} is not supported by the local run")
                return function(arg)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.template.conditions:
                raise Unresolvable(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self.template.conditions[name]))
        return self._conditions[name]

    def active(self, resource: dict) -> bool:
        """False when the resource's Condition is false (CloudFormation would not create it)."""
        name = resource.get("Condition")
        return True if name is None else self.condition(name)

    # ------------------------------------------------------------------ Ref and Sub
    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.resources:
            return self.resources.ref(name)
        raise Unresolvable(f"Ref to unknown name {name}")

    def _sub_name(self, name: str, variables: dict) -> Any:
        if name in variables:
            return variables[name]
        if "." in name and name.split(".", 1)[0] in self.template.resources:
            return self.resources.get_att(*name.split(".", 1))
        return self._ref(name)

    def _fn_sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):  # ${!Literal} is an escaped ${Literal}
                return "${" + name[1:] + "}"
            value = self._sub_name(name, variables)
            return ",".join(map(str, value)) if isinstance(value, list) else str(value)

        return _SUB_VARIABLE.sub(replace, text)

    def _fn_getatt(self, arg: Any) -> Any:
        logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        if logical_id not in self.template.resources:
            raise Unresolvable(f"GetAtt of unknown resource {logical_id}")
        return self.resources.get_att(logical_id, self.resolve(attribute))

    # ------------------------------------------------------------------ conditions
    def _fn_if(self, arg: list) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_equals(self, arg: list) -> bool:
        left, right = (self.resolve(value) for value in arg)
        return str(left) == str(right)

    def _fn_not(self, arg: list) -> bool:
        return not self.resolve(arg[0])

    def _fn_and(self, arg: list) -> bool:
        return all(self.resolve(value) for value in arg)

    def _fn_or(self, arg: list) -> bool:
        return any(self.resolve(value) for value in arg)

    # ------------------------------------------------------------------ the rest
    def _fn_join(self, arg: list) -> str:
        delimiter, values = arg
        return str(delimiter).join(str(value) for value in self.resolve(values))

    def _fn_select(self, arg: list) -> Any:
        index, values = arg
        return self.resolve(values)[int(self.resolve(index))]

    def _fn_split(self, arg: list) -> list[str]:
        delimiter, text = arg
        return str(self.resolve(text)).split(delimiter)

    def _fn_findinmap(self, arg: list) -> Any:
        name, top, second = (self.resolve(value) for value in arg)
        try:
            return self.template.mappings[name][top][second]
        except KeyError as error:
            raise Unresolvable(f"FindInMap {name}/{top}/{second} not found") from error

    def _fn_base64(self, arg: Any) -> str:
        return base64.b64encode(str(self.resolve(arg)).encode()).decode()

    def _fn_getazs(self, arg: Any) -> list[str]:
        region = self.pseudo["AWS::Region"]
        return [f"{region}a", f"{region}b", f"{region}c"]

    def _fn_length(self, arg: Any) -> int:
        return len(self.resolve(arg))

    def _fn_tojsonstring(self, arg: Any) -> str:
        return json.dumps(self.resolve(arg), separators=(",", ":"))

    def _fn_importvalue(self, arg: Any) -> Any:
        raise Unresolvable("Fn::ImportValue has no local stack to import from")


def parameter_values(template: Template, overrides: dict[str, Any]) -> dict[str, Any]:
    """Each parameter's Default, then the local run's overrides. CommaDelimitedList becomes a list."""
    values: dict[str, Any] = {}
    for name, spec in template.parameters.items():
        spec = spec or {}
        value = overrides.get(name, spec.get("Default", ""))
        if str(spec.get("Type", "")).startswith(("CommaDelimitedList", "List<")) and isinstance(value, str):
            value = [part.strip() for part in value.split(",")] if value else []
        values[name] = value
    return values
