"""ELBv2 adapter: the fleet's target group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from autoscaler.errors import TargetRegistrationError
from autoscaler.model import TargetHealth

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_elbv2.type_defs import TargetDescriptionTypeDef

_HEALTH = {h.value: h for h in TargetHealth}


class TargetGroup:
    def __init__(self, client: ElasticLoadBalancingv2Client, target_group_arn: str) -> None:
        self._elb = client
        self._arn = target_group_arn

    def health(self) -> dict[str, TargetHealth]:
        """Health of every registered target, in one call."""
        response = self._elb.describe_target_health(TargetGroupArn=self._arn)
        result: dict[str, TargetHealth] = {}
        for description in response.get("TargetHealthDescriptions", []):
            target_id = description["Target"]["Id"]
            state = description.get("TargetHealth", {}).get("State", "unavailable")
            result[target_id] = _HEALTH.get(state, TargetHealth.UNAVAILABLE)
        return result

    def register(self, instance_ids: Sequence[str]) -> None:
        if not instance_ids:
            return
        try:
            self._elb.register_targets(TargetGroupArn=self._arn, Targets=self._targets(instance_ids))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidTarget":
                raise TargetRegistrationError(str(exc)) from exc
            raise

    def deregister(self, instance_ids: Sequence[str]) -> None:
        if instance_ids:
            self._elb.deregister_targets(TargetGroupArn=self._arn, Targets=self._targets(instance_ids))

    @staticmethod
    def _targets(instance_ids: Sequence[str]) -> list[TargetDescriptionTypeDef]:
        # No port: targets take the target group's port (30000).
        return [{"Id": i} for i in instance_ids]
