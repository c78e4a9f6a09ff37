"""fleet_template/cfn.py: the short-form loader, parameter values, the offline resolver and
the bound Template the simulator reads its deployment from."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_template.cfn import (
    Template,
    TemplateError,
    UnresolvableError,
    load_template,
    loads_template,
    parameter_values,
    resolve,
)
from simulator.deployment import load_template as load_simulated

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
    with pytest.raises(TemplateError, match="unknown template parameter 'Unknown'"):
        parameter_values(template, {"Unknown": "1"})
    with pytest.raises(TemplateError, match="NoDefault has no default"):
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


CHECKED = """
Parameters:
  Size: {Type: Number, Default: 3, MinValue: 1, MaxValue: 10}
  Kind: {Type: String, Default: small, AllowedValues: [small, large]}
  Period: {Type: Number, Default: 60, AllowedValues: [10, 60]}
  Vpc: {Type: "AWS::EC2::VPC::Id"}
"""


def test_parameter_values_check_constraints_and_take_supplied_values() -> None:
    template = loads_template(CHECKED)
    assert parameter_values(template, {"Size": "4.0", "Period": "10"}) == {"Size": 4, "Kind": "small", "Period": 10}
    values = parameter_values(template, supplied={"Vpc": "vpc-1", "Size": 9}, require_all=True)
    assert (values["Vpc"], values["Size"]) == ("vpc-1", 3)  # a default wins over a supplied value
    for overrides, message in [
        ({"Size": "0"}, "below MinValue"),
        ({"Size": "11"}, "above MaxValue"),
        ({"Size": "many"}, "expected a number"),
        ({"Kind": "huge"}, "not in AllowedValues"),
        ({"Period": "30"}, "not in AllowedValues"),
    ]:
        with pytest.raises(TemplateError, match=message):
            parameter_values(template, overrides)


BOUND = """
Parameters:
  Env: {Type: String, Default: prod}
  Subnets: {Type: CommaDelimitedList, Default: "a,b"}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Not [!Condition IsProd]
  Both: !And [!Condition IsProd, !Or [!Condition IsDev, !Equals [1, "1"]]]
Mappings:
  Sizes: {prod: {Count: 3}, dev: {Count: 1}}
Resources:
  Always: {Type: AWS::X::Y}
  ProdOnly: {Type: AWS::X::Y, Condition: IsProd}
  DevOnly: {Type: AWS::X::Z, Condition: IsDev}
  Group: {Type: AWS::ElasticLoadBalancingV2::TargetGroup}
  Fn:
    Type: AWS::Serverless::Function
    Properties: {FunctionName: !Sub "${AWS::StackName}-fn"}
  Alarm:
    Type: AWS::CloudWatch::Alarm
    Properties: {AlarmName: !Sub "${Env}-alarm"}
"""


def test_template_conditions_resources_and_mappings() -> None:
    template = Template(loads_template(BOUND), {"Env": "prod", "Subnets": ["a", "b"]})
    assert template.condition("IsProd") and not template.condition("IsDev") and template.condition("Both")
    assert list(template.resources()) == ["Always", "ProdOnly", "Group", "Fn", "Alarm"]
    assert list(template.resources("AWS::X::Y", "AWS::X::Z")) == ["Always", "ProdOnly"]
    assert template.resource_type("Fn") == "AWS::Serverless::Function" and template.resource_type("Nope") is None
    assert template.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Count"]}) == 3
    assert template.resolve({"Fn::Join": ["-", [["x"], {"Ref": "Subnets"}]]}) == "x-a-b"
    assert template.resolve({"Fn::Sub": "${Subnets}"}) == "a,b"
    assert template.resolve({"Fn::Length": {"Ref": "Subnets"}}) == 2
    assert template.resolve({"Fn::GetAZs": ""}) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert template.resolve({"Fn::ToJsonString": {"a": {"Ref": "Env"}}}) == '{"a":"prod"}'
    with pytest.raises(UnresolvableError, match="unknown condition"):
        template.condition("Nope")
    with pytest.raises(UnresolvableError, match="unsupported intrinsic Fn::Cidr"):
        template.resolve({"Fn::Cidr": ["10.0.0.0/16", 2, 8]})


def test_template_physical_ids_and_attributes_win_over_placeholders() -> None:
    template = Template(loads_template(BOUND), {"Env": "prod"}, pseudo={"AWS::StackName": "sim"})
    assert template.resolve({"Ref": "Group"}) == "<Group>"
    assert template.resolve({"Fn::GetAtt": ["Group", "TargetGroupFullName"]}) == "<Group.TargetGroupFullName>"
    template.physical["Group"] = "arn:tg"
    template.attributes[("Group", "TargetGroupFullName")] = "targetgroup/tg/1"
    assert template.resolve({"Ref": "Group"}) == "arn:tg"
    assert template.resolve({"Fn::GetAtt": "Group.TargetGroupFullName"}) == "targetgroup/tg/1"
    assert template.resolve({"Fn::Sub": "${Group}|${Group.TargetGroupFullName}|${AWS::StackName}"}) == (
        "arn:tg|targetgroup/tg/1|sim"
    )


def test_load_reads_files_and_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(CHECKED, encoding="utf-8")
    template = Template.load(path, {"Size": "5"}, supplied={"Vpc": "vpc-9"})
    assert template.parameters == {"Size": 5, "Kind": "small", "Period": 60, "Vpc": "vpc-9"}
    with pytest.raises(TemplateError, match="Vpc has no default"):
        Template.load(path)
    for text in ["- a list", "a: [unclosed"]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(TemplateError, match=r"t\.yaml: "):
            load_template(path)
    with pytest.raises(TemplateError, match=r"missing\.yaml: "):
        load_template(tmp_path / "missing.yaml")


def test_simulated_names_for_resources_not_made_in_moto(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(BOUND, encoding="utf-8")
    template = load_simulated(path, {"Env": "dev"})
    assert template.resolve({"Ref": "Fn"}) == "sim-fn"
    assert template.resolve({"Fn::GetAtt": ["Fn", "Arn"]}) == "arn:aws:lambda:eu-west-1:123456789012:function:sim-fn"
    assert template.resolve({"Ref": "Alarm"}) == "dev-alarm"
    assert template.resolve({"Ref": "Always"}) == "sim-Always"
    assert template.resolve({"Fn::GetAtt": ["Always", "Arn"]}) == "arn:aws:sim:eu-west-1:123456789012:Always"
    assert template.resolve({"Fn::GetAtt": ["Always", "Id"]}) == "sim-Always-Id"
    assert list(template.resources("AWS::X::Y", "AWS::X::Z")) == ["Always", "DevOnly"]
    with pytest.raises(TemplateError, match="GetAtt of unknown resource Nope"):
        template.resolve({"Fn::GetAtt": ["Nope", "Arn"]})
