"""Contract between template.yaml and the code: settings, handlers, alarms -> topics -> functions,
encryption, IMDSv2, IAM scoping and the user-data stub. Offline (samtranslator)."""

from __future__ import annotations

import fnmatch
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from autoscaler.settings import ENVIRONMENT_VARIABLES, REQUIRED_ENVIRONMENT_VARIABLES, Settings

from fleet_template.cfn import function_environment, parameter_values, resolve
from tests.template.conftest import FUNCTIONS, PARAMETERS, ROOT
from userdata.render import placeholders, render, user_data

REQUIRED = set(REQUIRED_ENVIRONMENT_VARIABLES)
POWERTOOLS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


def _resources(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == rtype}


def _lambda_functions(translated: dict[str, Any]) -> dict[str, dict[str, Any]]:
    functions = _resources(translated, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS), "one Lambda function per handler, no more"
    return functions


def _ref(node: Any) -> str | None:
    return node.get("Ref") if isinstance(node, dict) else None


def _fleet_name(params: dict[str, Any]) -> str:
    return params["FleetName"] or "autoscaler"  # the resolver's AWS::StackName


# ---------------------------------------------------------------------------------- settings


def test_every_required_setting_is_set_on_every_function(translated: dict[str, Any]) -> None:
    assert {
        "FLEET_NAME",
        "TABLE_NAME",
        "LAUNCH_TEMPLATE_ID",
        "SUBNET_IDS",
        "TARGET_GROUP_ARN",
        "TARGET_GROUP_DIMENSION",
        "CPU_TARGET",
        "SCALE_IN_STABILIZATION_SECONDS",
    } <= REQUIRED
    for name, function in _lambda_functions(translated).items():
        env = function["Properties"]["Environment"]["Variables"]
        missing = REQUIRED - set(env)
        assert not missing, f"{name} lacks {sorted(missing)}"


def test_functions_set_only_known_variables_and_the_tunables(translated: dict[str, Any]) -> None:
    tunables = {
        "LAUNCH_TEMPLATE_VERSION",
        "MIN_SIZE",
        "MAX_SIZE",
        "WARM_POOL_SIZE",
        "CPU_TARGET",
        "REQUESTS_PER_TARGET_TARGET",
        "SCALE_IN_STABILIZATION_SECONDS",
        "CPU_METRIC_NAMESPACE",
        "CPU_METRIC_PERIOD_SECONDS",
        "SCALE_OUT_ALARM_NAMES",
        "SCALE_IN_ALARM_NAMES",
    }
    assert tunables <= set(ENVIRONMENT_VARIABLES)
    for name, function in _lambda_functions(translated).items():
        env = set(function["Properties"]["Environment"]["Variables"])
        unknown = env - set(ENVIRONMENT_VARIABLES) - POWERTOOLS_VARIABLES
        assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"
        assert tunables <= env, f"{name} lacks {sorted(tunables - env)}"
        assert env >= POWERTOOLS_VARIABLES


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_resolved_environment_builds_settings(
    raw_template: dict[str, Any], params: dict[str, Any], logical_id: str
) -> None:
    env = function_environment(raw_template, logical_id, params)
    settings = Settings.from_env(env)
    fleet = _fleet_name(params)
    assert settings.fleet_name == fleet
    assert settings.subnet_ids == tuple(PARAMETERS["SubnetIds"].split(","))
    assert settings.min_size == params["MinSize"]
    assert settings.max_size == params["MaxSize"]
    assert settings.warm_pool_size == params["WarmPoolSize"]
    assert settings.target("cpu") == params["CpuTarget"]
    assert settings.target("requests") == params["RequestsPerTargetTarget"]
    assert settings.cpu_metric_namespace == "Autoscaler"
    assert settings.scale_out_alarm_names == ("<CpuHighAlarm>", "<RequestsHighAlarm>")
    assert settings.scale_in_alarm_names == ("<ScaleInAlarm>",)
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Autoscaler"


def test_overrides_reach_the_functions(raw_template: dict[str, Any]) -> None:
    from fleet_template.cfn import parameter_values

    params = parameter_values(raw_template, {**PARAMETERS, "FleetName": "blue", "MaxSize": "3"})
    env = function_environment(raw_template, "ReconcileFunction", params)
    assert env["FLEET_NAME"] == "blue"
    assert env["MAX_SIZE"] == "3"


# ---------------------------------------------------------------------------------- handlers


@pytest.mark.parametrize(("logical_id", "handler"), sorted(FUNCTIONS.items()))
def test_handler_names_an_importable_module_under_functions(
    translated: dict[str, Any], logical_id: str, handler: str
) -> None:
    props = translated["Resources"][logical_id]["Properties"]
    assert props["Handler"] == handler
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    module_name, _, attribute = handler.rpartition(".")
    path = ROOT / "functions" / Path(*module_name.split("."))
    assert path.with_suffix(".py").is_file(), f"{handler}: no {path.with_suffix('.py')}"
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute)), f"{handler} is not callable"


def test_functions_share_one_code_uri(raw_template: dict[str, Any]) -> None:
    assert raw_template["Globals"]["Function"]["CodeUri"] == "functions/"
    for logical_id in FUNCTIONS:
        assert "CodeUri" not in raw_template["Resources"][logical_id]["Properties"]


def test_timeouts_retries_and_failure_destination(translated: dict[str, Any]) -> None:
    functions = _lambda_functions(translated)
    for name, function in functions.items():
        expected = 900 if name == "LifecycleFunction" else 120
        assert function["Properties"]["Timeout"] == expected, name
        assert "LoggingConfig" in function["Properties"], f"{name}: explicit log group"
    configs = _resources(translated, "AWS::Lambda::EventInvokeConfig")
    by_function = {_ref(c["Properties"]["FunctionName"]): c["Properties"] for c in configs.values()}
    assert set(by_function) == set(functions)
    queues = _resources(translated, "AWS::SQS::Queue")
    for props in by_function.values():
        assert props["MaximumRetryAttempts"] == 2
        destination = props["DestinationConfig"]["OnFailure"]["Destination"]
        assert destination["Fn::GetAtt"][0] in queues
    for queue in queues.values():
        assert queue["Properties"].get("SqsManagedSseEnabled") or queue["Properties"].get("KmsMasterKeyId")
    depth_alarms = [
        a
        for a in _resources(translated, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/SQS"
    ]
    assert depth_alarms, "an alarm on the failed-events queue depth"


# ---------------------------------------------------------------------------------- alarms


def _subscribed_functions(translated: dict[str, Any], topic: str) -> set[str]:
    subscribed = set()
    for sub in _resources(translated, "AWS::SNS::Subscription").values():
        props = sub["Properties"]
        if _ref(props["TopicArn"]) == topic and props["Protocol"] == "lambda":
            subscribed.add(props["Endpoint"]["Fn::GetAtt"][0])
    permitted = {
        _ref(p["Properties"]["FunctionName"])
        for p in _resources(translated, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "sns.amazonaws.com" and _ref(p["Properties"].get("SourceArn")) == topic
    }
    return subscribed & permitted


def test_high_alarms_reach_scale_out_and_the_composite_reaches_scale_in(
    translated: dict[str, Any], raw_template: dict[str, Any], params: dict[str, Any]
) -> None:
    alarms = _resources(translated, "AWS::CloudWatch::Alarm")
    composites = _resources(translated, "AWS::CloudWatch::CompositeAlarm")
    out_topics = {
        _ref(t) for a in ("CpuHighAlarm", "RequestsHighAlarm") for t in alarms[a]["Properties"]["AlarmActions"]
    }
    assert out_topics == {"ScaleOutTopic"}
    assert _subscribed_functions(translated, "ScaleOutTopic") == {"ScaleOutFunction"}
    assert set(composites) == {"ScaleInAlarm"}
    in_topics = {_ref(t) for t in composites["ScaleInAlarm"]["Properties"]["AlarmActions"]}
    assert in_topics == {"ScaleInTopic"}
    assert _subscribed_functions(translated, "ScaleInTopic") == {"ScaleInFunction"}
    # The low alarms act only through the composite, which needs both of them.
    for name in ("CpuLowAlarm", "RequestsLowAlarm"):
        props = alarms[name]["Properties"]
        assert not props.get("AlarmActions") and not props.get("OKActions"), name
    rule = resolve(composites["ScaleInAlarm"]["Properties"]["AlarmRule"], params, raw_template)
    assert rule == 'ALARM("<CpuLowAlarm>") AND ALARM("<RequestsLowAlarm>")'
    # Every alarm with an action is named in SCALE_OUT/SCALE_IN_ALARM_NAMES (reconcile re-reads them).
    env = function_environment(raw_template, "ReconcileFunction", params)
    assert env["SCALE_OUT_ALARM_NAMES"].split(",") == ["<CpuHighAlarm>", "<RequestsHighAlarm>"]
    assert env["SCALE_IN_ALARM_NAMES"] == "<ScaleInAlarm>"
    with_actions = {n for n, a in {**alarms, **composites}.items() if a["Properties"].get("AlarmActions")}
    assert with_actions == {"CpuHighAlarm", "RequestsHighAlarm", "ScaleInAlarm"}


def test_alarm_names_derive_from_the_fleet_name(raw_template: dict[str, Any], params: dict[str, Any]) -> None:
    fleet = _fleet_name(params)
    names = {
        logical_id: resolve(r["Properties"]["AlarmName"], params, raw_template)
        for logical_id, r in raw_template["Resources"].items()
        if r["Type"].startswith("AWS::CloudWatch::") and "Alarm" in r["Type"]
    }
    assert names["CpuHighAlarm"] == f"{fleet}-cpu-high"
    assert names["ScaleInAlarm"] == f"{fleet}-scale-in"
    assert all(name.startswith(f"{fleet}-") for name in names.values())


def test_alarm_signals_match_the_contract(raw_template: dict[str, Any], params: dict[str, Any]) -> None:
    res = raw_template["Resources"]
    cpu = resolve(res["CpuHighAlarm"]["Properties"], params, raw_template)
    assert (cpu["Namespace"], cpu["MetricName"]) == ("Autoscaler", "CPUUtilization")
    assert cpu["Dimensions"] == [{"Name": "Fleet", "Value": _fleet_name(params)}]
    assert cpu["Period"] in (10, 30)
    # Hysteresis: the alarm wakes the scale-out above the target the decision sizes for.
    assert cpu["Threshold"] == params["CpuHighThreshold"] >= params["CpuTarget"]
    # The scale-out guard: the load balancer's own count, independent of the hosts' publishers.
    guard = resolve(res["RequestsHighAlarm"]["Properties"], params, raw_template)
    assert (guard["Namespace"], guard["MetricName"], guard["Statistic"], guard["Period"]) == (
        "AWS/ApplicationELB",
        "RequestCountPerTarget",
        "Sum",
        60,
    )
    assert guard["Dimensions"] == [{"Name": "TargetGroup", "Value": "<TargetGroup.TargetGroupFullName>"}]
    # Scale-in reads the hosts' own 10 s figures, the metric the publisher sends beside CPU.
    low = resolve(res["RequestsLowAlarm"]["Properties"], params, raw_template)
    assert (low["Namespace"], low["MetricName"], low["Statistic"]) == ("Autoscaler", "RequestsPerMinute", "Average")
    assert low["Dimensions"] == [{"Name": "Fleet", "Value": _fleet_name(params)}]
    env = raw_template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["REQUEST_METRIC_NAME"] == low["MetricName"]
    treat = {
        n: res[n]["Properties"]["TreatMissingData"]
        for n in ("CpuHighAlarm", "RequestsHighAlarm", "CpuLowAlarm", "RequestsLowAlarm")
    }
    assert set(treat.values()) == {"notBreaching"}  # no data is never evidence of load or idleness


# ---------------------------------------------------------------------------------- encryption


def test_topics_use_a_customer_managed_key_cloudwatch_may_use(translated: dict[str, Any]) -> None:
    keys = _resources(translated, "AWS::KMS::Key")
    topics = _resources(translated, "AWS::SNS::Topic")
    assert set(topics) == {"ScaleOutTopic", "ScaleInTopic", "DemandTopic"}
    for name, topic in topics.items():
        key = topic["Properties"]["KmsMasterKeyId"]
        assert _ref(key) in keys, f"{name} must use this stack's KMS key, not alias/aws/sns"
        props = keys[_ref(key)]["Properties"]
        assert props["EnableKeyRotation"] is True
        grants = [
            s
            for s in props["KeyPolicy"]["Statement"]
            if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        ]
        assert grants, "the key policy must let CloudWatch alarms use the key"
        actions = {a for s in grants for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
        assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= actions


def _topic_policy(translated: dict[str, Any], topic: str) -> dict[str, Any]:
    (policy,) = [
        p["Properties"]
        for p in _resources(translated, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic} in p["Properties"]["Topics"]
    ]
    return policy


def test_topic_policy_lets_only_this_accounts_alarms_publish(translated: dict[str, Any]) -> None:
    policy = _topic_policy(translated, "ScaleOutTopic")
    assert policy["Topics"] == [{"Ref": "ScaleOutTopic"}, {"Ref": "ScaleInTopic"}]
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "aws:SourceArn" in allow["Condition"]["ArnLike"]


def test_state_table_contract(translated: dict[str, Any]) -> None:
    (table,) = _resources(translated, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert {(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]} == {("pk", "HASH"), ("sk", "RANGE")}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


# ---------------------------------------------------------------------------------- host demand reports


def test_host_demand_reports_switch(raw_template: dict[str, Any]) -> None:
    spec = raw_template["Parameters"]["HostDemandReports"]
    assert (spec["Type"], spec["AllowedValues"], spec["Default"]) == ("String", ["Enabled", "Disabled"], "Enabled")
    for words in ("panic line", "publication delay", "in service", "panic window", "Disabled"):
        assert words in spec["Description"], words
    groups = raw_template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (panic,) = [g for g in groups if g["Label"]["default"].startswith("Panic mode")]
    assert {"PanicThreshold", "HostDemandReports"} <= set(panic["Parameters"])
    assert raw_template["Conditions"]["HostDemandReportsEnabled"] == {
        "Fn::Equals": [{"Ref": "HostDemandReports"}, "Enabled"]
    }


def test_demand_topic_is_encrypted_and_feeds_the_scale_out_function(translated: dict[str, Any]) -> None:
    topic = _resources(translated, "AWS::SNS::Topic")["DemandTopic"]
    assert "Condition" not in topic  # always there; the switch is the hosts'
    assert topic["Properties"] == {
        "DisplayName": "Autoscaler host demand reports",
        "KmsMasterKeyId": {"Ref": "AlarmKey"},
    }
    assert _subscribed_functions(translated, "DemandTopic") == {"ScaleOutFunction"}
    assert _subscribed_functions(translated, "ScaleOutTopic") == {"ScaleOutFunction"}  # the alarms' path stays
    # The event source HostDemand, beside the alarms' ScaleOutAlarms.
    subscription = _resources(translated, "AWS::SNS::Subscription")["ScaleOutFunctionHostDemand"]
    assert subscription["Properties"]["TopicArn"] == {"Ref": "DemandTopic"}


def _denied(policy: dict[str, Any], action: str, context: dict[str, Any]) -> bool:
    """Whether a Deny statement of a topic policy matches (Bool, ArnNotEquals: what it uses; a
    missing key makes ArnNotEquals true, as IAM evaluates it)."""
    for statement in policy["PolicyDocument"]["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] != "Deny" or not any(_matches(a, action) for a in actions):
            continue
        matched = True
        for operator, conditions in statement.get("Condition", {}).items():
            for key, expected in conditions.items():
                if operator == "Bool":
                    matched &= context.get(key) == expected
                elif operator == "ArnNotEquals":
                    matched &= context.get(key) != expected
                else:
                    raise AssertionError(f"operator {operator} not modelled")
        if matched:
            return True
    return False


def test_demand_topic_policy_lets_only_the_workers_publish_over_tls(
    raw_template: dict[str, Any], params: dict[str, Any], translated: dict[str, Any]
) -> None:
    policy = _topic_policy(translated, "DemandTopic")
    assert policy["Topics"] == [{"Ref": "DemandTopic"}]
    resolved = resolve(policy, params, raw_template)
    statements = resolved["PolicyDocument"]["Statement"]
    # Only Deny statements, only on sns:Publish: the account still manages the topic through IAM.
    assert {s["Effect"] for s in statements} == {"Deny"}
    assert {s["Action"] for s in statements} == {"sns:Publish"}
    assert {s["Resource"] for s in statements} == {"<DemandTopic>"}
    worker, other = "<WorkerRole.Arn>", "arn:aws:iam::123456789012:role/someone-else"
    assert not _denied(resolved, "sns:Publish", {"aws:PrincipalArn": worker, "aws:SecureTransport": "true"})
    assert _denied(resolved, "sns:Publish", {"aws:PrincipalArn": other, "aws:SecureTransport": "true"})
    assert _denied(resolved, "sns:Publish", {"aws:SecureTransport": "true"})  # a service principal
    assert _denied(resolved, "sns:Publish", {"aws:PrincipalArn": worker, "aws:SecureTransport": "false"})
    root = {"aws:PrincipalArn": "arn:aws:iam::123456789012:root", "aws:SecureTransport": "true"}
    for action in ("sns:SetTopicAttributes", "sns:DeleteTopic", "sns:Subscribe", "sns:GetTopicAttributes"):
        assert not _denied(resolved, action, root), action


def _worker_statements(raw_template: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    policy = resolve(raw_template["Resources"]["WorkerRole"]["Properties"]["Policies"][0], params, raw_template)
    return list(policy["PolicyDocument"]["Statement"])


def test_workers_may_publish_only_to_the_demand_topic_and_only_when_enabled(
    raw_template: dict[str, Any], params: dict[str, Any]
) -> None:
    statements = _worker_statements(raw_template, params)
    assert any(_allows(s, "sns:Publish", "<DemandTopic>", {}) for s in statements)
    for topic in ("<ScaleOutTopic>", "<ScaleInTopic>", "arn:aws:sns:eu-west-1:123456789012:other"):
        assert not any(_allows(s, "sns:Publish", topic, {}) for s in statements), topic
    sns_actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) if "sns:" in a
    }
    assert sns_actions == {"sns:Publish"}
    # The topic's key, for SNS only: what a publisher to an encrypted topic needs.
    via_sns = {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert any(_allows(s, action, "<AlarmKey.Arn>", via_sns) for s in statements), action
        assert not any(
            _allows(s, action, "<AlarmKey.Arn>", {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}) for s in statements
        )
    assert not any(_allows(s, "kms:Encrypt", "<AlarmKey.Arn>", via_sns) for s in statements)

    disabled = parameter_values(raw_template, {**PARAMETERS, "HostDemandReports": "Disabled"})
    statements = _worker_statements(raw_template, disabled)
    assert not any(_allows(s, "sns:Publish", "<DemandTopic>", {}) for s in statements)
    assert not any(_allows(s, "kms:Decrypt", "<AlarmKey.Arn>", via_sns) for s in statements)
    assert {s["Sid"] for s in statements} >= {"PublishFleetCpu", "DownloadWorkerLayer", "TagItselfReady"}


# ---------------------------------------------------------------------------------- instances


def test_launch_template_requires_imdsv2_and_encrypts_volumes(
    raw_template: dict[str, Any], params: dict[str, Any]
) -> None:
    data = raw_template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
        "InstanceMetadataTags": "enabled",
    }
    (mapping,) = data["BlockDeviceMappings"]
    assert mapping["Ebs"]["Encrypted"] is True
    assert mapping["Ebs"]["VolumeType"] == "gp3"
    specs = resolve(data["TagSpecifications"], params, raw_template)
    for spec in specs:
        assert {"Key": "AutoscalerFleet", "Value": _fleet_name(params)} in spec["Tags"], spec["ResourceType"]
    assert {s["ResourceType"] for s in specs} >= {"instance", "volume"}


def test_no_ssh_and_workers_reachable_only_from_the_alb(raw_template: dict[str, Any]) -> None:
    res = raw_template["Resources"]
    worker = res["WorkerSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in worker
    ingress = [r["Properties"] for r in res.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert ingress == [
        {
            "Description": "Requests and health checks from the ALB",
            "GroupId": {"Ref": "WorkerSecurityGroup"},
            "IpProtocol": "tcp",
            "FromPort": 30000,
            "ToPort": 30000,
            "SourceSecurityGroupId": {"Ref": "LoadBalancerSecurityGroup"},
        }
    ]
    assert [(e["FromPort"], e["ToPort"]) for e in worker["SecurityGroupEgress"]] == [(443, 443)]
    alb = res["LoadBalancerSecurityGroup"]["Properties"]
    assert [(i["FromPort"], i.get("CidrIp")) for i in alb["SecurityGroupIngress"]] == [(30000, {"Ref": "AllowedCidr"})]
    assert [e["DestinationSecurityGroupId"] for e in alb["SecurityGroupEgress"]] == [{"Ref": "WorkerSecurityGroup"}]


def test_target_group_and_listener(raw_template: dict[str, Any], params: dict[str, Any]) -> None:
    res = raw_template["Resources"]
    tg = resolve(res["TargetGroup"]["Properties"], params, raw_template)
    assert (tg["Port"], tg["Protocol"], tg["TargetType"], tg["HealthCheckPath"]) == (30000, "HTTP", "instance", "/ping")
    attributes = {a["Key"]: a["Value"] for a in tg["TargetGroupAttributes"]}
    assert attributes["deregistration_delay.timeout_seconds"] == params["DeregistrationDelaySeconds"]
    assert res["Listener"]["Properties"]["Port"] == 30000
    assert res["LoadBalancer"]["Properties"]["Scheme"] == "internet-facing"


def test_worker_may_tag_only_itself_ready(raw_template: dict[str, Any], params: dict[str, Any]) -> None:
    policy = resolve(raw_template["Resources"]["WorkerRole"]["Properties"]["Policies"][0], params, raw_template)
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    tag = statements["TagItselfReady"]
    assert tag["Action"] == "ec2:CreateTags"
    # Fn::Sub's ${!...} escape leaves the IAM policy variable for IAM to evaluate.
    assert tag["Condition"]["StringEquals"]["aws:ARN"] == "${ec2:SourceInstanceARN}"
    assert tag["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"] == ["AutoscalerReady"]
    assert statements["PublishFleetCpu"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Autoscaler"}}
    layer = resolve(raw_template["Resources"]["WorkerLayer"]["Properties"]["LayerName"], params, raw_template)
    assert statements["DownloadWorkerLayer"]["Resource"].endswith(f":layer:{layer}:*")


# ---------------------------------------------------------------------------------- IAM


def test_control_plane_policy_grants_exactly_the_apis_the_code_calls(
    raw_template: dict[str, Any], params: dict[str, Any], translated: dict[str, Any]
) -> None:
    policy = resolve(raw_template["Resources"]["ControlPlanePolicy"]["Properties"], params, raw_template)
    actions: set[str] = set()
    for statement in policy["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        acts = statement["Action"]
        actions |= {acts} if isinstance(acts, str) else set(acts)
    assert actions == {
        "ec2:DescribeInstances",
        "ec2:RunInstances",
        "ec2:StartInstances",
        "ec2:StopInstances",
        "ec2:TerminateInstances",
        "ec2:CreateTags",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:RegisterTargets",
        "elasticloadbalancing:DeregisterTargets",
        "cloudwatch:GetMetricData",
        "cloudwatch:DescribeAlarms",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "iam:PassRole",
    }
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    fleet = _fleet_name(params)
    manage = statements["ManageFleetInstances"]
    assert manage["Condition"]["StringEquals"] == {"ec2:ResourceTag/AutoscalerFleet": fleet}
    run = statements["LaunchTaggedFleetInstancesFromThisTemplate"]
    assert run["Condition"]["StringEquals"] == {"aws:RequestTag/AutoscalerFleet": fleet}
    assert run["Condition"]["ArnEquals"]["ec2:LaunchTemplate"].endswith("launch-template/<LaunchTemplate>")
    assert statements["TagOnLaunch"]["Condition"] == {"StringEquals": {"ec2:CreateAction": "RunInstances"}}
    assert statements["PassWorkerRoleToEc2"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
    }
    assert statements["RegisterFleetTargets"]["Resource"] == "<TargetGroup>"
    assert statements["FleetStateTable"]["Resource"] == "<StateTable.Arn>"
    # Every function's role carries the policy.
    roles = _resources(translated, "AWS::IAM::Role")
    for name, function in _lambda_functions(translated).items():
        role = roles[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        assert {"Ref": "ControlPlanePolicy"} in role["Properties"]["ManagedPolicyArns"], name


def test_fleet_custom_resource_is_deleted_first(raw_template: dict[str, Any]) -> None:
    res = raw_template["Resources"]
    fleet = res["Fleet"]
    assert fleet["Type"] == "Custom::Fleet"
    assert fleet["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["LifecycleFunction", "Arn"]}
    text = json.dumps(fleet)
    for dependency in ("TargetGroup", "WorkerSecurityGroup", "LaunchTemplate"):
        assert dependency in fleet["DependsOn"] or f'"{dependency}"' in text, dependency
    for name in ("ScaleOutFunction", "ScaleInFunction", "ReconcileFunction"):
        assert res[name].get("DependsOn") == "Fleet", f"{name} must go before the fleet on delete"


# ---------------------------------------------------------------------------------- user-data


USERDATA_PARAMETERS = {"WorkerQueueBudgetSeconds", "PanicThreshold", "CpuTarget"}


def test_userdata_placeholders_are_provided(raw_template: dict[str, Any], params: dict[str, Any]) -> None:
    text, variables = user_data(raw_template)
    # The queue budget, the panic threshold and the CPU target are parameters: Fn::Sub reads them
    # without a variable of their own.
    assert placeholders(text) == set(variables) | {"AWS::Region"} | USERDATA_PARAMETERS
    assert set(variables) == {"FleetName", "WorkerLayerVersionArn", "CpuMetricNamespace", "DemandTopicArn"}
    assert set(raw_template["Parameters"]) >= USERDATA_PARAMETERS
    assert variables["WorkerLayerVersionArn"] == {"Ref": "WorkerLayer"}
    assert variables["CpuMetricNamespace"] == "Autoscaler"
    # The topic when the hosts report, else empty (the boot script's "no reports").
    assert resolve(variables["DemandTopicArn"], params, raw_template) == "<DemandTopic>"
    disabled = parameter_values(raw_template, {**PARAMETERS, "HostDemandReports": "Disabled"})
    assert resolve(variables["DemandTopicArn"], disabled, raw_template) == ""
    # Rendered as Fn::Sub renders it: every ${...} resolves (render raises on one that does not).
    values = {name: f"<{name}>" for name in [*variables, "AWS::Region", *USERDATA_PARAMETERS]}
    rendered = render(text, values)
    assert "${" not in rendered
    # The boot script gets the three, quoted.
    for flag, value in (
        ("--demand-topic-arn", "<DemandTopicArn>"),
        ("--panic-threshold", "<PanicThreshold>"),
        ("--cpu-target", "<CpuTarget>"),
    ):
        assert f"{flag} '{value}'" in rendered, flag


def test_userdata_is_a_stub_that_runs_the_boot_script_from_the_layer(raw_template: dict[str, Any]) -> None:
    """No second copy of the boot script: user-data fetches the layer by its ARN and runs the
    bootstrap.sh the layer carries, which is worker/bootstrap.sh (ContentUri: worker/)."""
    text, _variables = user_data(raw_template)
    rendered = render(
        text,
        {
            "AWS::Region": "eu-west-1",
            "FleetName": "fleet",
            "WorkerLayerVersionArn": "arn:aws:lambda:eu-west-1:123456789012:layer:autoscaler-worker:3",
            "CpuMetricNamespace": "Autoscaler",
            "WorkerQueueBudgetSeconds": "10",
            "DemandTopicArn": "",
            "PanicThreshold": "2",
            "CpuTarget": "80",
        },
    )
    assert "layer_arn='arn:aws:lambda:eu-west-1:123456789012:layer:autoscaler-worker:3'" in rendered
    assert 'aws lambda get-layer-version-by-arn --region "$region" --arn "$layer_arn"' in rendered
    assert 'bash "$work/bootstrap.sh"' in rendered
    assert len(text.splitlines()) < 60
    layer = raw_template["Resources"]["WorkerLayer"]["Properties"]
    assert layer["ContentUri"] == "worker/"
    boot_script = ROOT / "worker" / "bootstrap.sh"
    assert boot_script.is_file()
    assert "write_units" in boot_script.read_text(encoding="utf-8")
    assert "write_units" not in text


# ---------------------------------------------------------------------------------- outputs


def test_outputs(raw_template: dict[str, Any]) -> None:
    assert {
        "LoadBalancerUrl",
        "DashboardUrl",
        "ScaleOutTopicArn",
        "ScaleInTopicArn",
        "DemandTopicArn",
        "StateTableName",
        "FleetName",
        "TargetGroupArn",
        "LaunchTemplateId",
        "ReconcileFunctionName",
        "ScaleOutAlarmNames",
        "ScaleInAlarmNames",
    } <= set(raw_template["Outputs"])
    assert raw_template["Outputs"]["LoadBalancerUrl"]["Value"] == {"Fn::Sub": "http://${LoadBalancer.DNSName}:30000"}


def test_dashboard_body_is_json(raw_template: dict[str, Any], params: dict[str, Any]) -> None:
    body = resolve(raw_template["Resources"]["Dashboard"]["Properties"]["DashboardBody"], params, raw_template)
    widgets = json.loads(body)["widgets"]
    text = json.dumps(widgets)
    for metric in (
        "InService",
        "Booting",
        "Pool",
        "Desired",
        "CPUUtilization",
        "RequestCountPerTarget",
        "TargetResponseTime",
        "Decisions",
    ):
        assert metric in text, metric
    assert any(w["type"] == "alarm" for w in widgets)


def test_samconfig_environments(raw_template: dict[str, Any]) -> None:
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    default = config["default"]["deploy"]["parameters"]
    assert default["capabilities"] == "CAPABILITY_IAM"
    assert default["resolve_s3"] is True
    assert default["confirm_changeset"] is True
    dev = config["dev"]["deploy"]["parameters"]
    overrides = dict(pair.split("=", 1) for pair in dev["parameter_overrides"].split())
    assert set(overrides) <= set(raw_template["Parameters"])
    assert overrides["MaxSize"] == "3"
    assert overrides["WarmPoolSize"] == "0"


def test_every_function_has_the_settings_fleetctl_reads(raw_template: dict[str, Any], params: dict[str, Any]) -> None:
    """fleetctl builds Settings from one function's environment (the output it names): that is
    only the fleet's settings if every function's Settings are the same."""
    from fleetctl.stack import SETTINGS_FUNCTION_OUTPUT

    output = raw_template["Outputs"][SETTINGS_FUNCTION_OUTPUT]["Value"]
    source = Settings.from_env(function_environment(raw_template, output["Ref"], params))
    for logical_id in FUNCTIONS:
        assert Settings.from_env(function_environment(raw_template, logical_id, params)) == source, logical_id


def test_the_decision_lease_outlives_every_scaling_invocation(translated: dict[str, Any]) -> None:
    """A lease shorter than the function timeout would let a slow run interleave with the next."""
    lease = Settings.model_fields["lease_seconds"].default
    for name, function in _lambda_functions(translated).items():
        if name != "LifecycleFunction":  # holds the lease only for create, a few seconds
            assert function["Properties"]["Timeout"] < lease, name


# ---------------------------------------------------------------------------------- deploy windows


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)  # IAM's * and ? wildcards


def _allows(statement: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` given the condition keys in
    ``context`` (StringEquals / ArnEquals / ArnLike only: what these policies use)."""
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    if statement["Effect"] != "Allow" or not any(_matches(a, action) for a in actions):
        return False
    if not any(_matches(r, resource) for r in resources):
        return False
    for operator, conditions in statement.get("Condition", {}).items():
        for key, expected in conditions.items():
            values = expected if isinstance(expected, list) else [expected]
            if key not in context:
                return False
            if operator in ("StringEquals", "ArnEquals") and context[key] not in values:
                return False
            if operator == "ArnLike" and not any(_matches(v, context[key]) for v in values):
                return False
    return True


def test_launch_permissions_hold_for_both_versions_during_a_deploy(raw_template: dict[str, Any]) -> None:
    """An update gives the roles their new policies before the functions get the new
    LAUNCH_TEMPLATE_VERSION: until then they launch the previous version, whose image (the AMI
    the SSM parameter named before) and worker layer version must still be allowed."""
    resources = raw_template["Resources"]
    layer_props = resources["WorkerLayer"]["Properties"]
    params = parameter_values(raw_template, {**PARAMETERS, "AmiId": "ami-0new0000000000000"})
    layer_name = resolve(layer_props.get("LayerName", "WorkerLayer"), params, raw_template)

    def layer_version(version: int) -> str:
        return f"arn:aws:lambda:eu-west-1:123456789012:layer:{layer_name}:{version}"

    def ref(name: str) -> str:
        return layer_version(8) if name == "WorkerLayer" else f"<{name}>"

    worker = resolve(resources["WorkerRole"]["Properties"]["Policies"][0], params, raw_template, resource_ref=ref)
    statements = worker["PolicyDocument"]["Statement"]
    for version in (7, 8):
        assert any(_allows(s, "lambda:GetLayerVersion", layer_version(version), {}) for s in statements), version
    other_layer = layer_version(8).replace(f":layer:{layer_name}:", ":layer:someone-elses:")
    assert not any(_allows(s, "lambda:GetLayerVersion", other_layer, {}) for s in statements)

    control = resolve(resources["ControlPlanePolicy"]["Properties"], params, raw_template)
    statements = control["PolicyDocument"]["Statement"]
    for image, owner in (("ami-0old0000000000000", "amazon"), ("ami-0new0000000000000", "amazon")):
        arn = f"arn:aws:ec2:eu-west-1::image/{image}"
        assert any(_allows(s, "ec2:RunInstances", arn, {"ec2:Owner": owner}) for s in statements), image
    strangers = "arn:aws:ec2:eu-west-1::image/ami-0bad0000000000000"
    assert not any(_allows(s, "ec2:RunInstances", strangers, {"ec2:Owner": "999999999999"}) for s in statements)


def test_functions_reserve_no_concurrency_by_default(raw_template: dict[str, Any], params: dict[str, Any]) -> None:
    """An account may reserve only its unreserved concurrency minus 100 (Lambda developer guide,
    "Configuring reserved concurrency"): on a new account with a low quota any reservation fails
    the deploy. The decision lease, not reserved concurrency, serializes decisions."""
    assert params["ReservedConcurrency"] == 0
    reservation = raw_template["Globals"]["Function"]["ReservedConcurrentExecutions"]
    assert resolve({"ReservedConcurrentExecutions": reservation}, params, raw_template) == {}
    for logical_id in FUNCTIONS:
        assert "ReservedConcurrentExecutions" not in raw_template["Resources"][logical_id]["Properties"]


DEPLOY_COMMAND = re.compile(r"sam deploy((?:\s+--[\w-]+(?:[ =](?!--)[^\s`#]+)?)+)")


def test_every_documented_deploy_command_can_work(raw_template: dict[str, Any]) -> None:
    """A parameter without a default must come from the samconfig environment the command uses,
    or the command must be --guided (which asks for it and saves it there)."""
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    required = {name for name, spec in raw_template["Parameters"].items() if "Default" not in spec}
    assert required  # VpcId, SubnetIds
    commands = []
    for doc in ("README.md", "docs/stack.md", "samconfig.toml"):
        for flags in DEPLOY_COMMAND.findall((ROOT / doc).read_text(encoding="utf-8")):
            commands.append((doc, flags.split()))
    assert any("--config-env" in flags for _, flags in commands), "no documented deploy of the dev environment"
    for doc, flags in commands:
        if "--guided" in flags:
            continue
        env = flags[flags.index("--config-env") + 1] if "--config-env" in flags else "default"
        overrides = config[env]["deploy"]["parameters"].get("parameter_overrides", "")
        given = {pair.split("=", 1)[0] for pair in overrides.split()}
        missing = sorted(required - given)
        assert not missing, f"{doc}: `sam deploy {' '.join(flags)}` cannot work: {missing} have no default"
