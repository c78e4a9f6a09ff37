"""A real moto_server process, a fleet's stack inside it, and the real ``fleetctl`` console script.

The stack is deliberately small: moto's CloudFormation creates the state table; the VPC, the
subnets, the launch template, the target group and the reconcile function are made with direct
API calls and passed to the stack as plain-string outputs, like the real template's outputs. The
function's environment is the template's (every parameter at its default, ``MaxSize`` 4) with
this stack's resources filled in: fleetctl reads its settings from there, as from a deployed one.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.host_endpoints import FAKE_CREDENTIALS, MOTO_SERVER, running_moto_server
from tests.support.template_settings import template_environment

# Every fleetctl command, as an operator reads them in --help (the help tests go through each).
COMMANDS = ("status", "alarms", "activities", "history", "scale", "suspend", "resume", "pool", "ping", "refresh")

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FLEETCTL = BIN / "fleetctl"
REGION = "eu-west-1"


@dataclass
class Moto:
    url: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    if not MOTO_SERVER.exists() or not FLEETCTL.exists():
        pytest.skip("moto_server or the fleetctl console script missing: run `make venv`")
    with running_moto_server(tmp_path_factory.mktemp("moto") / "moto_server.log") as url:
        yield Moto(url)


class _Ping(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"pong\n" if self.path == "/ping" else b"not found\n"
        self.send_response(200 if self.path == "/ping" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def ping_url() -> Iterator[str]:
    """Stands in for the load balancer: answers /ping."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class FleetStack:
    name: str
    fleet: str
    moto: Moto
    subnets: tuple[str, ...]
    target_group_arn: str
    launch_template: str

    def run(
        self, *args: str, env: dict[str, str] | None = None, stack: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The real console script, against the moto server, with fake credentials."""
        command = [str(FLEETCTL), *args, "--endpoint-url", self.moto.url, "--region", REGION]
        if stack:
            command += ["--stack", self.name]
        return subprocess.run(command, capture_output=True, text=True, env=env or cli_env(), timeout=60, check=False)

    def run_many(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        """Independent invocations side by side (each is a separate process, as in real use)."""
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            return list(pool.map(lambda args: self.run(*args), commands))

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--output", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def instance_ids(self) -> list[str]:
        """The fleet's live instances, read straight from moto (not through fleetctl)."""
        response = self.moto.client("ec2").describe_instances(
            Filters=[
                {"Name": "tag:AutoscalerFleet", "Values": [self.fleet]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )
        return [i["InstanceId"] for r in response["Reservations"] for i in r["Instances"]]

    def state_item(self) -> dict[str, Any] | None:
        key = {"pk": {"S": f"FLEET#{self.fleet}"}, "sk": {"S": "STATE"}}
        item: dict[str, Any] | None = (
            self.moto.client("dynamodb").get_item(TableName=f"{self.fleet}-state", Key=key).get("Item")
        )
        return item

    def mark_ready(self, instance_ids: list[str]) -> None:
        """What an instance's user-data does once /ping answers through nginx."""
        self.moto.client("ec2").create_tags(Resources=instance_ids, Tags=[{"Key": "AutoscalerReady", "Value": "true"}])

    def versions(self) -> dict[str, int]:
        """``lifecycle:v<launch-template version>`` -> count over live instances, from moto's tags."""
        response = self.moto.client("ec2").describe_instances(
            Filters=[
                {"Name": "tag:AutoscalerFleet", "Values": [self.fleet]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )
        counts: dict[str, int] = {}
        for reservation in response["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                key = f"{tags['AutoscalerLifecycle']}:v{tags['aws:ec2launchtemplate:version']}"
                counts[key] = counts.get(key, 0) + 1
        return counts

    def deploy(self) -> str:
        """What `sam deploy` of a changed worker does: a new launch-template version, which the
        functions' environment then names (LAUNCH_TEMPLATE_VERSION)."""
        ec2 = self.moto.client("ec2")
        created = ec2.create_launch_template_version(
            LaunchTemplateId=self.launch_template, SourceVersion="1", LaunchTemplateData={}
        )
        version = str(created["LaunchTemplateVersion"]["VersionNumber"])
        functions = self.moto.client("lambda")
        function = f"{self.fleet}-reconcile"
        variables = functions.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        functions.update_function_configuration(
            FunctionName=function, Environment={"Variables": {**variables, "LAUNCH_TEMPLATE_VERSION": version}}
        )
        return version

    def reconcile(self) -> dict[str, Any]:
        """One run of the every-minute reconcile function: its entry point, in this process, with
        the settings fleetctl reads from the stack (what the deployed function runs with)."""
        from autoscaler import entrypoints

        from fleetctl.context import Context

        context = Context(self.name, region=REGION, endpoint_url=self.moto.url)
        return entrypoints.reconcile(context.runtime)

    def installed(self) -> None:
        """Every live instance's user-data has finished: all report ready (warm-ups can be pooled)."""
        ids = self.instance_ids()
        if ids:
            self.mark_ready(ids)


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLEETCTL_"))}
    env.update(FAKE_CREDENTIALS)
    env = {k: v for k, v in env.items() if not k.startswith("POWERTOOLS_")}  # fleetctl sets its own
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def _template(fleet: str, table: str, outputs: dict[str, str]) -> str:
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"fleetctl test stack of fleet {fleet}",
        "Parameters": {"FleetName": {"Type": "String", "Default": fleet}},
        "Resources": {
            "StateTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": table,
                    "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                },
            }
        },
        "Outputs": {
            "FleetName": {"Value": {"Ref": "FleetName"}},
            "StateTableName": {"Value": {"Ref": "StateTable"}},
            **{key: {"Value": value} for key, value in outputs.items()},
        },
    }
    return json.dumps(body)


def _reconcile_function(moto: Moto, network: dict[str, Any], name: str, environment: dict[str, str]) -> str:
    """A function holding the fleet's settings in its environment, as the stack's functions do."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handlers/reconcile.py", "def handler(event, context):\n    return {}\n")
    moto.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=network["function_role"],
        Handler="handlers.reconcile.handler",
        Code={"ZipFile": archive.getvalue()},
        Environment={"Variables": environment},
    )
    return name


@pytest.fixture(scope="session")
def network(moto: Moto) -> dict[str, Any]:
    ec2 = moto.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = tuple(
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"][
            "SubnetId"
        ]
        for n, zone in enumerate("ab")
    )
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]  # never booted
    template = ec2.create_launch_template(
        LaunchTemplateName="fleet-workers", LaunchTemplateData={"ImageId": image, "InstanceType": "c7g.medium"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    role = moto.client("iam").create_role(RoleName="fleet-functions", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return {"vpc": vpc, "subnets": subnets, "launch_template": template, "function_role": role}


@pytest.fixture
def make_stack(moto: Moto, network: dict[str, Any], ping_url: str) -> Callable[..., FleetStack]:
    """A fresh fleet per test (its own stack, table and target group): tests do not share state."""

    def make(**overrides: str) -> FleetStack:
        suffix = uuid.uuid4().hex[:6]
        fleet = f"fleet{suffix}"
        group = moto.client("elbv2").create_target_group(
            Name=f"tg-{suffix}", Protocol="HTTP", Port=30000, VpcId=network["vpc"], TargetType="instance"
        )["TargetGroups"][0]["TargetGroupArn"]
        table = f"{fleet}-state"
        environment = {
            **template_environment(),
            "FLEET_NAME": fleet,
            "TABLE_NAME": table,
            "LAUNCH_TEMPLATE_ID": network["launch_template"],
            "LAUNCH_TEMPLATE_VERSION": "1",
            "SUBNET_IDS": ",".join(network["subnets"]),
            "TARGET_GROUP_ARN": group,
            "TARGET_GROUP_DIMENSION": f"targetgroup/tg-{suffix}/0123456789abcdef",
            "LOAD_BALANCER_DIMENSION": f"app/lb-{suffix}/0123456789abcdef",
            "SCALE_OUT_ALARM_NAMES": f"{fleet}-cpu-high,{fleet}-requests-high",
            "SCALE_IN_ALARM_NAMES": f"{fleet}-scale-in",
            "MAX_SIZE": "4",
        }
        outputs = {
            "ReconcileFunctionName": _reconcile_function(moto, network, f"{fleet}-reconcile", environment),
            "LoadBalancerUrl": ping_url,
            "DashboardUrl": f"https://{REGION}.console.aws.amazon.com/cloudwatch/home#dashboards:name={fleet}",
            "LaunchTemplateId": network["launch_template"],
            "LaunchTemplateVersion": "1",
            "SubnetIds": ",".join(network["subnets"]),
            "TargetGroupArn": group,
            "TargetGroupDimension": f"targetgroup/tg-{suffix}/0123456789abcdef",
            "LoadBalancerDimension": f"app/lb-{suffix}/0123456789abcdef",
            "ScaleOutAlarmNames": f"{fleet}-cpu-high,{fleet}-requests-high",
            "ScaleInAlarmNames": f"{fleet}-scale-in",
            "CpuLowAlarmName": f"{fleet}-cpu-low",
            "RequestsLowAlarmName": f"{fleet}-requests-low",
            **overrides,
        }
        name = f"stack-{suffix}"
        cloudformation = moto.client("cloudformation")
        cloudformation.create_stack(StackName=name, TemplateBody=_template(fleet, table, outputs))
        status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        assert status == "CREATE_COMPLETE", status
        return FleetStack(name, fleet, moto, network["subnets"], group, network["launch_template"])

    return make
