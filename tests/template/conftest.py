"""The SAM template, read offline: raw (short-form tags expanded) and translated by samtranslator."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from fleet_template.cfn import load_template, parameter_values

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# Values for the parameters without a default (and a non-default fleet name, to prove it flows).
PARAMETERS: dict[str, Any] = {
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0aaaaaaaaaaaaaaaa,subnet-0bbbbbbbbbbbbbbbb",
    "AmiId": "ami-0123456789abcdef0",
}

FUNCTIONS = {
    "ScaleOutFunction": "handlers.scale_out.handler",
    "ScaleInFunction": "handlers.scale_in.handler",
    "ReconcileFunction": "handlers.reconcile.handler",
    "LifecycleFunction": "handlers.lifecycle.handler",
}


class FakeManagedPolicyLoader:
    """samtranslator asks IAM for managed-policy ARNs by name; answer offline."""

    def load(self) -> dict[str, str]:
        names = ["AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSLambdaRole"]
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in names}


@pytest.fixture(scope="session")
def raw_template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="session")
def params(raw_template: dict[str, Any]) -> dict[str, Any]:
    return parameter_values(raw_template, PARAMETERS, require_all=True)


@pytest.fixture(scope="session")
def translated(raw_template: dict[str, Any]) -> dict[str, Any]:
    try:
        from samtranslator.translator.transform import transform
    except ImportError:
        message = (
            "aws-sam-translator is not installed in this venv: `make template-check` installs it "
            "into .venv (or pip install aws-sam-translator)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

    template = copy.deepcopy(raw_template)
    # As `sam validate` does: local code paths become S3 URIs before the transform.
    template["Globals"]["Function"]["CodeUri"] = "s3://bucket/functions.zip"
    for resource in template["Resources"].values():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://bucket/layer.zip"
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://bucket/functions.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    values = {k: v for k, v in PARAMETERS.items() if k != "SubnetIds"}
    values["SubnetIds"] = PARAMETERS["SubnetIds"].split(",")
    return transform(template, values, FakeManagedPolicyLoader())
