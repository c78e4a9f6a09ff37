"""The functions' IAM policy grants exactly the API actions the code calls: none missing, none unused.

The calls are recorded with botocore hooks (tests/support/api_calls.py) during every moto test
of this session, plus a tour of every control-plane path below, so the test stands on its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from autoscaler import entrypoints
from autoscaler.controller import Controller
from autoscaler.model import Direction

from fleet_template.cfn import resolve
from tests.support import api_calls
from tests.support.aws import REGISTRATION_SECONDS
from tests.support.events import alarm_event

pytestmark = pytest.mark.integration


def _tour(fleet: Any) -> None:
    """Create, warm up, scale out, scale in, drain, refresh and roll back, read history, suspend, delete."""
    fleet = fleet.with_settings(scale_in_stabilization_seconds=0)
    runtime = fleet.runtime
    entrypoints.create_fleet(runtime)
    fleet.mark_ready()
    entrypoints.reconcile(runtime)
    fleet.clock.advance(REGISTRATION_SECONDS)  # the first health check passes: in service
    fleet.knobs.cpu = 90.0
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    outcome = entrypoints.handle_alarm_event(alarm_event("fleet-cpu-high", fleet.clock.now()), runtime, Direction.OUT)
    assert outcome["results"][0]["reason"] == "scale-out"
    fleet.knobs.alarms["fleet-cpu-high"] = "OK"
    cleared = alarm_event("fleet-cpu-high", fleet.clock.now(), new="OK", old="ALARM")
    entrypoints.handle_alarm_event(cleared, runtime, Direction.OUT)
    fleet.clock.advance(fleet.settings.reversal_window_seconds)  # no scale-in sooner after a scale-out
    fleet.knobs.cpu, fleet.knobs.requests = 20.0, 20.0
    fleet.knobs.alarms["fleet-scale-in"] = "ALARM"
    outcome = entrypoints.handle_alarm_event(alarm_event("fleet-scale-in", fleet.clock.now()), runtime, Direction.IN)
    assert outcome["results"][0]["reason"] == "scale-in"
    fleet.clock.advance(400)
    entrypoints.reconcile(runtime)
    # A deploy's refresh (warm pool first), watched by an alarm, then an operator's rollback.
    fleet.ec2.create_launch_template_version(
        LaunchTemplateId=fleet.settings.launch_template_id, SourceVersion="1", LaunchTemplateData={}
    )
    deployed = fleet.with_settings(launch_template_version="2", refresh_alarm_names=("fleet-5xx",))
    assert entrypoints.reconcile(deployed.runtime)["refresh_event"] == "refresh-started"
    entrypoints.refresh_status(deployed.runtime)
    entrypoints.rollback_refresh(deployed.runtime)
    Controller(runtime).activities()
    entrypoints.set_suspended(runtime, True)
    entrypoints.delete_fleet(runtime, timeout_seconds=30)


def test_policy_grants_exactly_the_recorded_calls(fleet, raw_template: dict[str, Any], params: dict[str, Any]):
    _tour(fleet)
    called = set(api_calls.RECORDED)
    if "ec2:RunInstances" in called:
        called.add("iam:PassRole")  # implicit: the launch template names the worker's instance profile

    policy = resolve(raw_template["Resources"]["ControlPlanePolicy"]["Properties"], params, raw_template)
    granted: set[str] = set()
    for statement in policy["PolicyDocument"]["Statement"]:
        actions = statement["Action"]
        granted |= {actions} if isinstance(actions, str) else set(actions)

    assert called - granted == set(), "the code calls APIs the policy does not grant"
    assert granted - called == set(), "the policy grants APIs the code never calls"
