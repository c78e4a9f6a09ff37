"""tools/cfn_template.py: the short-form loader and the offline resolver."""

from __future__ import annotations

import pytest

from tools.cfn_template import UnresolvableError, loads_template, parameter_values, resolve

TEXT = """
Parameters:
  Name: {Type: String, Default: ""}
  Size: {Type: Number, Default: 3}
  Ratio: {Type: Number, Default: "0.5"}
  Subnets: {Type: "List<AWS::EC2::Subnet::Id>", Default: "a,b"}
  NoDefault: {Type: String}
Conditions:
  HasName: !Not [!Equals [!Ref Name, ""]]
Resources:
  Thing:
    Type: AWS::X::Y
    Properties:
      Ref: !Ref Size
      Att: !GetAtt Thing.Arn
      AttList: !GetAtt [Thing, Arn]
      Sub: !Sub "${AWS::Region}-${Name}-${!literal}"
      SubList: !Sub ["${A}/${Thing.Arn}", {A: !If [HasName, !Ref Name, fallback]}]
      Join: !Join [",", !Ref Subnets]
      Select: !Select [1, !Ref Subnets]
      Split: !Split [",", "x,y"]
      B64: !Base64 plain
      Maybe: !If [HasName, yes-name, !Ref AWS::NoValue]
"""


def test_loader_expands_short_forms() -> None:
    props = loads_template(TEXT)["Resources"]["Thing"]["Properties"]
    assert props["Ref"] == {"Ref": "Size"}
    assert props["Att"] == {"Fn::GetAtt": ["Thing", "Arn"]}
    assert props["AttList"] == {"Fn::GetAtt": ["Thing", "Arn"]}
    assert props["Join"] == {"Fn::Join": [",", {"Ref": "Subnets"}]}
    assert props["Maybe"]["Fn::If"][2] == {"Ref": "AWS::NoValue"}


def test_parameter_values_defaults_overrides_and_types() -> None:
    template = loads_template(TEXT)
    values = parameter_values(template)
    assert values == {"Name": "", "Size": 3, "Ratio": 0.5, "Subnets": ["a", "b"]}
    values = parameter_values(template, {"Size": "7", "Subnets": "c", "NoDefault": "z"}, require_all=True)
    assert (values["Size"], values["Subnets"], values["NoDefault"]) == (7, ["c"], "z")
    with pytest.raises(KeyError):
        parameter_values(template, {"Unknown": "1"})
    with pytest.raises(KeyError):
        parameter_values(template, require_all=True)


def test_resolve_intrinsics() -> None:
    template = loads_template(TEXT)
    props = template["Resources"]["Thing"]["Properties"]
    out = resolve(props, parameter_values(template), template)
    assert out["Ref"] == 3
    assert out["Att"] == "<Thing.Arn>"
    assert out["Sub"] == "eu-west-1--${literal}"
    assert out["SubList"] == "fallback/<Thing.Arn>"
    assert out["Join"] == "a,b"
    assert out["Select"] == "b"
    assert out["Split"] == ["x", "y"]
    assert out["B64"] == "plain"
    assert "Maybe" not in out
    named = resolve(props, parameter_values(template, {"Name": "n"}), template, resource_ref=lambda n: n.upper())
    assert named["SubList"] == "n/THING.ARN"
    assert named["Maybe"] == "yes-name"


def test_unknown_ref_raises() -> None:
    with pytest.raises(UnresolvableError):
        resolve({"Ref": "Nope"}, {}, {})
