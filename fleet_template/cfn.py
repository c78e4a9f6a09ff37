"""Read the CloudFormation/SAM template offline: a YAML loader for the short-form tags,
typed and checked parameter values, and a resolver for conditions and intrinsic functions.

The one template reader of the project (template tests, tools, the simulator)::

    from fleet_template.cfn import load_template, parameter_values, function_environment, resolve

    template = load_template("template.yaml")
    params = parameter_values(template, {"MaxSize": "3"})      # defaults + overrides, typed
    env = function_environment(template, "ScaleOutFunction", params)   # {"MIN_SIZE": "1", ...}
    alarm = resolve(template["Resources"]["CpuHighAlarm"]["Properties"], params, template)

Values that need a deployed stack (``!Ref SomeResource``, ``!GetAtt X.Y``) resolve to
placeholders: ``"<SomeResource>"`` and ``"<X.Y>"`` (override with ``resource_ref``).

``Template`` binds a template to its parameter values for repeated resolution, with
conditions evaluated once, ``resources()`` filtered by their Condition, and optional
``physical`` (Ref) and ``attributes`` (GetAtt) values for resources that exist somewhere
(the simulator's moto resources) taking precedence over ``resource_ref``::

    t = Template.load("template.yaml", {"MaxSize": "3"}, supplied={"VpcId": "vpc-1"})
    t.physical["TargetGroup"] = "arn:aws:elasticloadbalancing:..."
    t.resolve({"Ref": "TargetGroup"})

Only the standard library and PyYAML are needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "PSEUDO",
    "CfnLoader",
    "Template",
    "TemplateError",
    "UnresolvableError",
    "function_environment",
    "load_template",
    "loads_template",
    "parameter_values",
    "resolve",
]


class TemplateError(ValueError):
    """The template cannot be read, its parameters are invalid, or it cannot be resolved."""


class UnresolvableError(TemplateError):
    """An intrinsic function that cannot be evaluated offline."""


# --------------------------------------------------------------------------- loading

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
    """Parse template text; :class:`TemplateError` if it is not YAML or not a mapping."""
    try:
        data = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise TemplateError(str(exc)) from exc
    if not isinstance(data, dict):
        raise TemplateError("not a CloudFormation template (expected a mapping)")
    return data


def load_template(path: str | Path) -> dict[str, Any]:
    """Read and parse ``path``; errors (unreadable, not YAML, not a mapping) are a
    :class:`TemplateError` naming the file."""
    try:
        return loads_template(Path(path).read_text(encoding="utf-8"))
    except (OSError, TemplateError) as exc:
        raise TemplateError(f"{path}: {exc}") from exc


# --------------------------------------------------------------------------- parameters


def _coerce(name: str, spec: Mapping[str, Any], raw: Any) -> Any:
    """``raw`` as the parameter's type (Number -> int when integral else float, List ->
    list[str], else str), checked against AllowedValues and MinValue/MaxValue."""
    kind = str(spec.get("Type", "String"))
    allowed = spec.get("AllowedValues")
    value: Any
    if kind == "Number":
        try:
            number = float(raw)
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"parameter {name}: expected a number, got {raw!r}") from exc
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}: {raw!r} is below MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}: {raw!r} is above MaxValue {spec['MaxValue']}")
        value = int(number) if number.is_integer() else number
        text = str(raw)
    elif kind.startswith("List<") or kind == "CommaDelimitedList":
        if isinstance(raw, list):
            value = [str(x) for x in raw]
        else:
            value = [part.strip() for part in str(raw).split(",") if part.strip()]
        text = ",".join(value)
    else:
        value = str(raw)
        text = value
    if allowed is not None and text not in {str(a) for a in allowed} and value not in allowed:
        raise TemplateError(f"parameter {name}: {raw!r} not in AllowedValues {allowed}")
    return value


def parameter_values(
    template: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    supplied: Mapping[str, Any] | None = None,
    require_all: bool = False,
) -> dict[str, Any]:
    """Parameter values: ``overrides``, else the default, else ``supplied`` (values for
    parameters without a default, e.g. subnet ids made in moto); typed and checked as
    :func:`_coerce` says. SSM-typed parameters keep their default (the SSM path) unless
    overridden. An unknown override is a :class:`TemplateError`; parameters without any value
    are left out, or a :class:`TemplateError` with ``require_all``."""
    overrides = dict(overrides or {})
    supplied = supplied or {}
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    for name in overrides:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise TemplateError(f"unknown template parameter {name!r} (parameters: {known})")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        elif name in supplied:
            raw = supplied[name]
        elif require_all:
            raise TemplateError(f"parameter {name} has no default; give it with --param {name}=VALUE")
        else:
            continue
        values[name] = _coerce(name, spec, raw)
    return values


# --------------------------------------------------------------------------- intrinsics

PSEUDO: dict[str, Any] = {
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


# Attributes whose value is a number (a launch template's version numbers): their placeholder
# is one too, so what reads them as a number still can.
_NUMERIC_ATTRIBUTES = frozenset({"LatestVersionNumber", "DefaultVersionNumber"})


def _placeholder(name: str) -> str:
    if name.partition(".")[2] in _NUMERIC_ATTRIBUTES:
        return "1"
    return f"<{name}>"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NOVALUE: Any = _NoValue()


def _flatten(items: Any) -> list[Any]:
    if isinstance(items, list):
        out: list[Any] = []
        for item in items:
            out.extend(_flatten(item))
        return out
    return [items]


@dataclass
class Template:
    """A template bound to its parameter values; :meth:`resolve` evaluates intrinsics.

    A resource's Ref is ``physical[name]`` if given, else ``resource_ref(name)``; its GetAtt
    is ``attributes[(name, attribute)]`` if given, else ``resource_ref("name.attribute")``.
    ``pseudo`` overrides the pseudo parameters of :data:`PSEUDO`. Conditions are evaluated
    once, on first use."""

    data: Mapping[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    physical: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)
    pseudo: dict[str, Any] = field(default_factory=dict)
    resource_ref: Callable[[str], Any] = _placeholder
    conditions: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pseudo = {**PSEUDO, **self.pseudo}

    @classmethod
    def load(
        cls,
        path: str | Path,
        overrides: Mapping[str, Any] | None = None,
        *,
        supplied: Mapping[str, Any] | None = None,
        pseudo: Mapping[str, Any] | None = None,
    ) -> Template:
        """Load ``path`` with every parameter given a value (see :func:`parameter_values`)."""
        data = load_template(path)
        parameters = parameter_values(data, overrides, supplied=supplied, require_all=True)
        return cls(data, parameters, pseudo=dict(pseudo or {}))

    # -- the template ------------------------------------------------------------------------
    @property
    def declared_resources(self) -> Mapping[str, Any]:
        return self.data.get("Resources") or {}

    def resources(self, *types: str) -> dict[str, dict[str, Any]]:
        """Resources of the given types (all without ``types``) whose Condition holds, by logical id."""
        out: dict[str, dict[str, Any]] = {}
        for logical_id, resource in self.declared_resources.items():
            if types and resource.get("Type") not in types:
                continue
            condition = resource.get("Condition")
            if condition is not None and not self.condition(condition):
                continue
            out[logical_id] = resource
        return out

    def resource_type(self, logical_id: str) -> str | None:
        resource = self.declared_resources.get(logical_id)
        return None if resource is None else str(resource.get("Type"))

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            spec = (self.data.get("Conditions") or {}).get(name)
            if spec is None:
                raise UnresolvableError(f"unknown condition {name!r}")
            self.conditions[name] = bool(self.resolve(spec))
        return self.conditions[name]

    # -- references --------------------------------------------------------------------------
    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical:
            return self.physical[name]
        if name in self.declared_resources:
            return self.resource_ref(name)
        raise UnresolvableError(f"Ref to unknown name {name!r}")

    def get_att(self, name: str, attribute: str) -> Any:
        if (name, attribute) in self.attributes:
            return self.attributes[(name, attribute)]
        return self.resource_ref(f"{name}.{attribute}")

    # -- intrinsics --------------------------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        """Evaluate the intrinsic functions in ``node``; AWS::NoValue entries are dropped."""
        if isinstance(node, list):
            items = [self.resolve(x) for x in node]
            return [x for x in items if x is not _NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return _NOVALUE if arg == "AWS::NoValue" else self.ref(str(arg))
            if key == "Condition":
                return self.condition(str(arg))
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NOVALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self.condition(str(condition)) else when_false)
        if name == "Equals":
            return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
        if name == "Not":
            return not self.resolve(arg[0])
        if name == "And":
            return all(self.resolve(x) for x in arg)
        if name == "Or":
            return any(self.resolve(x) for x in arg)
        if name == "GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(str(parts[0]), str(self.resolve(parts[1])))
        if name == "Sub":
            return self._sub(arg)
        if name == "Join":
            sep, items = arg
            return str(sep).join(str(x) for x in _flatten(self.resolve(items)))
        if name == "Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Split":
            sep, text = arg
            return str(self.resolve(text)).split(sep)
        if name == "FindInMap":
            mapping, top, second = (self.resolve(x) for x in arg[:3])
            return self.data["Mappings"][mapping][top][second]
        if name == "GetAZs":
            region = self.resolve(arg) or self.pseudo["AWS::Region"]
            return [f"{region}a", f"{region}b", f"{region}c"]
        if name == "Base64":
            return self.resolve(arg)
        if name == "Length":
            return len(self.resolve(arg))
        if name == "ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if name == "ImportValue":
            return _placeholder(f"import:{self.resolve(arg)}")
        raise UnresolvableError(f"unsupported intrinsic Fn::{name}")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                value = variables[name]
            elif "." in name and name.split(".", 1)[0] in self.declared_resources:
                resource, attribute = name.split(".", 1)
                value = self.get_att(resource, attribute)
            else:
                value = self.ref(name)
            if isinstance(value, list):
                value = ",".join(str(v) for v in value)
            return str(value)

        return _SUB_VAR.sub(replace, str(text)).replace("${!", "${")


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
    bound = Template(template or {}, dict(params), pseudo=dict(pseudo or {}), resource_ref=resource_ref)
    return bound.resolve(node)


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
