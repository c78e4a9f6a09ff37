"""Read the CloudFormation/SAM template offline: a YAML loader for the short-form tags and a
small resolver for parameters and the intrinsic functions that only need parameters.

Reusable outside the template tests (the simulator may import it)::

    from tools.cfn_template import load_template, parameter_values, function_environment

    template = load_template("template.yaml")
    params = parameter_values(template, {"MaxSize": "3"})      # defaults + overrides, typed
    env = function_environment(template, "ScaleOutFunction", params)   # {"MIN_SIZE": "1", ...}
    alarm = resolve(template["Resources"]["CpuHighAlarm"]["Properties"], params)

Values that need a deployed stack (``!Ref SomeResource``, ``!GetAtt X.Y``) resolve to
placeholders: ``"<SomeResource>"`` and ``"<X.Y>"`` (override with ``resource_ref``).
Only the standard library and PyYAML are needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CfnLoader",
    "UnresolvableError",
    "dump_json",
    "function_environment",
    "load_template",
    "loads_template",
    "parameter_values",
    "resolve",
]

_SHORT_FORMS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Base64": "Fn::Base64",
    "FindInMap": "Fn::FindInMap",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Equals": "Fn::Equals",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Not": "Fn::Not",
    "Cidr": "Fn::Cidr",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
    "Transform": "Fn::Transform",
}


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns ``!Ref x`` into ``{"Ref": "x"}``, ``!GetAtt A.B`` into
    ``{"Fn::GetAtt": ["A", "B"]}`` and every other short form into its ``Fn::`` mapping."""


def _make_constructor(tag: str, key: str) -> Callable[[yaml.Loader, yaml.Node], Any]:
    def construct(loader: yaml.Loader, node: yaml.Node) -> Any:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        if tag == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {key: value}

    return construct


for _tag, _key in _SHORT_FORMS.items():
    CfnLoader.add_constructor(f"!{_tag}", _make_constructor(_tag, _key))


def loads_template(text: str) -> dict[str, Any]:
    data = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    if not isinstance(data, dict):
        raise ValueError("a template is a YAML mapping")
    return data


def load_template(path: str | Path) -> dict[str, Any]:
    return loads_template(Path(path).read_text(encoding="utf-8"))


def dump_json(template: Mapping[str, Any]) -> str:
    import json

    return json.dumps(template, indent=2, sort_keys=False)


# --------------------------------------------------------------------------- parameters


def _coerce(ptype: str, raw: Any) -> Any:
    if ptype.startswith("List<") or ptype == "CommaDelimitedList":
        if isinstance(raw, list):
            return [str(x) for x in raw]
        return [part.strip() for part in str(raw).split(",") if part.strip()]
    if ptype == "Number":
        text = str(raw)
        try:
            return int(text)
        except ValueError:
            return float(text)
    return str(raw)


def parameter_values(
    template: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    require_all: bool = False,
) -> dict[str, Any]:
    """Parameter values: defaults, then ``overrides``; typed (Number -> int/float, List ->
    list[str], else str). SSM-typed parameters keep their default (the SSM path) unless
    overridden. Parameters without a default and override are left out, or raise with
    ``require_all``."""
    overrides = dict(overrides or {})
    declared = template.get("Parameters", {}) or {}
    unknown = set(overrides) - set(declared)
    if unknown:
        raise KeyError(f"unknown parameters: {sorted(unknown)}")
    values: dict[str, Any] = {}
    missing = []
    for name, spec in declared.items():
        ptype = str(spec.get("Type", "String"))
        if name in overrides:
            values[name] = _coerce(ptype, overrides[name])
        elif "Default" in spec:
            values[name] = _coerce(ptype, spec["Default"])
        else:
            missing.append(name)
    if missing and require_all:
        raise KeyError(f"parameters without default or value: {missing}")
    return values


# --------------------------------------------------------------------------- intrinsics


class UnresolvableError(ValueError):
    """An intrinsic function that cannot be evaluated offline."""


_PSEUDO = {
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "autoscaler",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
    "AWS::StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/autoscaler/0",
    "AWS::NotificationARNs": [],
}

_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


def _placeholder(name: str) -> str:
    return f"<{name}>"


class _Resolver:
    def __init__(
        self,
        template: Mapping[str, Any],
        params: Mapping[str, Any],
        pseudo: Mapping[str, Any],
        resource_ref: Callable[[str], Any],
    ) -> None:
        self.template = template
        self.params = params
        self.pseudo = {**_PSEUDO, **pseudo}
        self.resource_ref = resource_ref
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            spec = (self.template.get("Conditions") or {})[name]
            self.conditions[name] = bool(self(spec))
        return self.conditions[name]

    def ref(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in (self.template.get("Resources") or {}):
            return self.resource_ref(name)
        raise UnresolvableError(f"Ref to unknown name {name!r}")

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] in (self.template.get("Resources") or {}):
                value = self.resource_ref(name)
            else:
                value = self.ref(name)
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            return str(value)

        out = _SUB_VAR.sub(replace, text)
        return out.replace("${!", "${")

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self(x) for x in node]
            return [x for x in items if x is not _NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                value = self.ref(arg)
                return _NOVALUE if value is None and arg == "AWS::NoValue" else value
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.resource_ref(".".join(str(p) for p in parts))
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                sep, items = arg[0], self(arg[1])
                return sep.join(str(x) for x in items)
            if key == "Fn::If":
                return self(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return str(self(arg[0])) == str(self(arg[1]))
            if key == "Fn::And":
                return all(self(x) for x in arg)
            if key == "Fn::Or":
                return any(self(x) for x in arg)
            if key == "Fn::Not":
                return not self(arg[0])
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Select":
                return self(arg[1])[int(self(arg[0]))]
            if key == "Fn::Split":
                return str(self(arg[1])).split(arg[0])
            if key == "Fn::Base64":
                return self(arg)
            if key == "Fn::FindInMap":
                name, top, second = (self(x) for x in arg[:3])
                return self.template["Mappings"][name][top][second]
            if key == "Fn::GetAZs":
                region = self(arg) or self.pseudo["AWS::Region"]
                return [f"{region}a", f"{region}b", f"{region}c"]
        resolved = {k: self(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NOVALUE}


_NOVALUE = object()


def resolve(
    node: Any,
    params: Mapping[str, Any],
    template: Mapping[str, Any] | None = None,
    *,
    pseudo: Mapping[str, Any] | None = None,
    resource_ref: Callable[[str], Any] = _placeholder,
) -> Any:
    """Evaluate the intrinsic functions in ``node`` with parameter values ``params``.

    ``template`` is needed for Conditions, Mappings and to tell resources from unknown
    names. Refs/GetAtts of resources become ``resource_ref(name)`` (default ``"<name>"``)."""
    resolver = _Resolver(template or {}, params, pseudo or {}, resource_ref)
    return resolver(node)


def function_environment(
    template: Mapping[str, Any],
    logical_id: str,
    params: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, str]:
    """The environment of a SAM function: Globals merged with the function's own variables,
    resolved with ``params`` (defaults when None), every value a string as Lambda sees it."""
    if params is None:
        params = parameter_values(template)
    globals_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get(
        "Variables"
    ) or {}
    props = template["Resources"][logical_id].get("Properties") or {}
    own_env = (props.get("Environment") or {}).get("Variables") or {}
    merged = {**globals_env, **own_env}
    resolved = resolve(merged, params, template, **kwargs)
    return {k: _env_string(v) for k, v in resolved.items()}


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
