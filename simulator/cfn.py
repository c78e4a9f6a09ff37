"""A small CloudFormation template reader: short-form tags, parameters, conditions, intrinsics.

Enough of CloudFormation to read what ``template.yaml`` deploys (alarms, functions, target
group, schedule) with the parameter defaults and ``--param`` overrides applied. Resources the
simulator creates in moto get their physical ids from ``physical`` (Ref) and ``attributes``
(GetAtt); any other Ref resolves to a stable placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SHORT_TAGS = (
    "Ref", "Condition", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
    "FindInMap", "GetAZs", "ImportValue", "Base64", "Cidr", "Transform", "Length", "ToJsonString",
)  # fmt: skip


class TemplateError(ValueError):
    """The template cannot be read or resolved."""


class _CfnLoader(yaml.SafeLoader):
    pass


def _make_constructor(tag: str) -> Any:
    key = "Ref" if tag == "Ref" else ("Condition" if tag == "Condition" else f"Fn::{tag}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


for _tag in SHORT_TAGS:
    _CfnLoader.add_constructor(f"!{_tag}", _make_constructor(_tag))


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: not a CloudFormation template (expected a mapping)")
    return data


_SUB = re.compile(r"\$\{([^}!][^}]*)\}")
PSEUDO: dict[str, Any] = {
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "sim",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/sim/00000000",
    "AWS::NoValue": None,
    "AWS::NotificationARNs": [],
}


@dataclass
class Template:
    """A template with parameters and conditions resolved; ``resolve`` evaluates intrinsics."""

    data: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        path: str | Path,
        overrides: Mapping[str, str] | None = None,
        supplied: Mapping[str, Any] | None = None,
    ) -> Template:
        """Load ``path``; ``overrides`` are user --param values (unknown names are an error),
        ``supplied`` fills parameters that have no default (e.g. subnet ids made in moto)."""
        data = load_yaml(path)
        template = cls(data)
        declared: dict[str, Any] = data.get("Parameters") or {}
        for name in overrides or {}:
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise TemplateError(f"unknown template parameter {name!r} (parameters: {known})")
        for name, spec in declared.items():
            if overrides and name in overrides:
                raw: Any = overrides[name]
            elif "Default" in spec:
                raw = spec["Default"]
            elif supplied and name in supplied:
                raw = supplied[name]
            else:
                raise TemplateError(f"parameter {name} has no default; give it with --param {name}=VALUE")
            template.parameters[name] = _coerce_parameter(name, spec, raw)
        return template

    def resources(self, *types: str) -> dict[str, dict[str, Any]]:
        """Resources of the given types whose Condition holds, by logical id."""
        out: dict[str, dict[str, Any]] = {}
        for logical_id, resource in (self.data.get("Resources") or {}).items():
            if types and resource.get("Type") not in types:
                continue
            condition = resource.get("Condition")
            if condition is not None and not self.condition(condition):
                continue
            out[logical_id] = resource
        return out

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            spec = (self.data.get("Conditions") or {}).get(name)
            if spec is None:
                raise TemplateError(f"unknown condition {name}")
            self.conditions[name] = bool(self.resolve(spec))
        return self.conditions[name]

    def resource_type(self, logical_id: str) -> str | None:
        resource = (self.data.get("Resources") or {}).get(logical_id)
        return None if resource is None else str(resource.get("Type"))

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.physical:
            return self.physical[name]
        resource = (self.data.get("Resources") or {}).get(name)
        if resource is None:
            raise TemplateError(f"Ref to unknown name {name}")
        props = resource.get("Properties") or {}
        kind = resource.get("Type", "")
        if kind in {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"}:
            return self.resolve(props.get("AlarmName", f"sim-{name}"))
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:{name}"
        if kind in {"AWS::Serverless::Function", "AWS::Lambda::Function"}:
            return self.resolve(props.get("FunctionName", f"sim-{name}"))
        if kind == "AWS::DynamoDB::Table":
            return self.resolve(props.get("TableName", f"sim-{name}"))
        return f"sim-{name}"

    def get_att(self, name: str, attribute: str) -> Any:
        if (name, attribute) in self.attributes:
            return self.attributes[(name, attribute)]
        kind = self.resource_type(name)
        if kind is None:
            raise TemplateError(f"GetAtt of unknown resource {name}")
        if attribute == "Arn":
            if kind in {"AWS::Serverless::Function", "AWS::Lambda::Function"}:
                return f"arn:aws:lambda:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:function:{self.ref(name)}"
            return f"arn:aws:sim:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:{name}"
        return f"sim-{name}-{attribute}"

    def resolve(self, value: Any) -> Any:
        """Evaluate intrinsic functions in ``value``; AWS::NoValue entries are dropped."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return _NO_VALUE
                return self.ref(str(arg))
            if key == "Condition":
                return self.condition(str(arg))
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        out = {}
        for k, v in value.items():
            resolved = self.resolve(v)
            if resolved is not _NO_VALUE:
                out[k] = resolved
        return out

    def _function(self, name: str, arg: Any) -> Any:
        if name == "If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self.condition(condition) else when_false)
        if name == "Equals":
            a, b = (self.resolve(x) for x in arg)
            return str(a) == str(b)
        if name == "Not":
            return not self.resolve(arg[0])
        if name == "And":
            return all(self.resolve(x) for x in arg)
        if name == "Or":
            return any(self.resolve(x) for x in arg)
        if name == "Join":
            sep, items = arg
            resolved = self.resolve(items)
            return str(sep).join(str(x) for x in _flatten(resolved))
        if name == "Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Split":
            sep, text = arg
            return str(self.resolve(text)).split(sep)
        if name == "GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(str(parts[0]), str(self.resolve(parts[1])))
        if name == "Sub":
            if isinstance(arg, list):
                text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
            else:
                text, variables = arg, {}
            return _SUB.sub(lambda m: str(self._sub_var(m.group(1), variables)), str(text)).replace("${!", "${")
        if name == "FindInMap":
            mapping, key, sub = (self.resolve(x) for x in arg[:3])
            return self.data["Mappings"][mapping][key][sub]
        if name == "GetAZs":
            return ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
        if name in {"Base64", "ToJsonString"}:
            return self.resolve(arg)
        if name == "Length":
            return len(self.resolve(arg))
        if name == "ImportValue":
            return f"sim-import-{self.resolve(arg)}"
        raise TemplateError(f"unsupported intrinsic Fn::{name}")

    def _sub_var(self, name: str, variables: Mapping[str, Any]) -> Any:
        if name in variables:
            return variables[name]
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.get_att(resource, attribute)
        return self.ref(name)


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE: Any = _NoValue()


def _flatten(items: Any) -> list[Any]:
    if isinstance(items, list):
        out: list[Any] = []
        for item in items:
            out.extend(_flatten(item))
        return out
    return [items]


def _coerce_parameter(name: str, spec: Mapping[str, Any], raw: Any) -> Any:
    kind = str(spec.get("Type", "String"))
    allowed = spec.get("AllowedValues")
    if kind == "Number":
        try:
            number = float(raw)
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"parameter {name}: expected a number, got {raw!r}") from exc
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}: {raw!r} is below MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}: {raw!r} is above MaxValue {spec['MaxValue']}")
        value: Any = int(number) if number.is_integer() else number
        text = str(raw)
    elif kind.startswith("List<") or kind == "CommaDelimitedList":
        value = raw if isinstance(raw, list) else [p.strip() for p in str(raw).split(",") if p.strip()]
        text = ",".join(str(v) for v in value)
    else:
        value = str(raw)
        text = value
    if allowed is not None and str(text) not in {str(a) for a in allowed} and value not in allowed:
        raise TemplateError(f"parameter {name}: {raw!r} not in AllowedValues {allowed}")
    return value
