"""What a command runs with: an AWS session, the stack, and a control-plane ``Runtime`` built from it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from fleetctl.stack import Stack, describe, function_environment

if TYPE_CHECKING:
    from autoscaler.controller import Controller
    from autoscaler.runtime import Runtime
    from boto3.session import Session
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient


@dataclass
class Context:
    stack_name: str
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    @cached_property
    def session(self) -> Session:
        import boto3

        return boto3.session.Session(profile_name=self.profile, region_name=self.region)

    @property
    def region_name(self) -> str | None:
        """--region, then AWS_REGION (which botocore itself may ignore), then AWS_DEFAULT_REGION or the profile's."""
        return self.region or os.environ.get("AWS_REGION") or self.session.region_name

    def _discovery_client(self, service: Literal["cloudformation", "lambda"]) -> Any:
        from botocore.config import Config

        # Discovery comes first: fail fast when the endpoint is unreachable, instead of riding
        # the control plane's eight standard-mode retries.
        config = Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 2})
        return self.session.client(service, region_name=self.region_name, endpoint_url=self.endpoint_url, config=config)

    @cached_property
    def stack(self) -> Stack:
        cloudformation: CloudFormationClient = self._discovery_client("cloudformation")
        return describe(cloudformation, self.stack_name)

    @cached_property
    def runtime(self) -> Runtime:
        from autoscaler.runtime import AwsClients, Runtime

        lambda_client: LambdaClient = self._discovery_client("lambda")
        settings = self.stack.settings(function_environment(lambda_client, self.stack))
        clients = AwsClients.create(session=self.session, region=self.region_name, endpoint_url=self.endpoint_url)
        return Runtime(settings=settings, clients=clients)

    @cached_property
    def controller(self) -> Controller:
        from autoscaler.controller import Controller

        return Controller(self.runtime)
