"""A fleet's AWS surroundings in moto, and the knobs tests turn (clock, target health, faults).

The fake itself is ``awsfake``'s, the same the twin uses; this module sets it up for a test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from autoscaler.adapters.state import StateStore
from autoscaler.runtime import AwsClients, Runtime
from autoscaler.settings import Settings

from awsfake.fleet_instances import FakeInstances
from awsfake.hooks import answer, inject_faults, throttle
from awsfake.metrics import get_metric_data
from awsfake.resources import REGION, create_launch_template, create_network, create_state_table, create_target_group
from awsfake.target_group import FakeTargetGroup
from awsfake.targets import HealthRules
from tests.support.knob_metrics import KnobPublisher
from tests.support.template_settings import template_parameter_defaults, template_settings

__all__ = ["FakeClock", "Fleet", "Knobs", "build_fleet", "throttle"]

START = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
# RegisterTargets to the first (passing) health check. ELB publishes no figure ("Register
# targets with your target group"); the twin samples a range, a test needs one value.
REGISTRATION_SECONDS = 10.0
# How long EC2's transitions take, one value each within the twin's ranges (simulator/params.py
# gives the sources): RunInstances or StartInstances to `running` 5 s ("EC2 boot time
# benchmarking", daemonology.net, 2021: 4.9 s), `stopping` and `shutting-down` 10 s (no public
# figure). A new instance is known to the API at once unless a test says otherwise
# (``fleet.fake_instances.visibility_seconds``).
PENDING_SECONDS = 5.0
HALT_SECONDS = 10.0
OUT_ALARMS = ("fleet-cpu-high", "fleet-requests-high")
IN_ALARMS = ("fleet-scale-in",)


def _seconds(when: datetime) -> float:
    return when.timestamp()


def _wall(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class FakeClock:
    """Virtual time: ``sleep`` advances it instead of blocking. ``at`` schedules what others
    (a concurrent invocation, an operator) do at a given time; it runs when time passes it."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start
        self.slept = 0.0
        self._scheduled: list[tuple[datetime, int, Callable[[], object]]] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self._pass(seconds)

    def advance(self, seconds: float) -> None:
        self._pass(seconds)

    def at(self, when: datetime, action: Callable[[], object]) -> None:
        self._scheduled.append((when, len(self._scheduled), action))
        self._scheduled.sort(key=lambda item: item[:2])

    def _pass(self, seconds: float) -> None:
        target = self.current + timedelta(seconds=seconds)
        while self._scheduled and self._scheduled[0][0] <= target:
            when, _, action = self._scheduled.pop(0)
            self.current = max(self.current, when)
            action()
        self.current = target


@dataclass
class Knobs:
    """Modelled AWS behaviour moto does not have: health, metrics, alarm states, injected faults."""

    # What the health checks found for a registered target that is not draining (a state such
    # as "unhealthy"); a target not named passes them. Draining is ELB's own doing: see Fleet.
    health: dict[str, str] = field(default_factory=dict)
    # Per-host figures, as every instance in service publishes them (CPU %, requests per minute),
    # and the load balancer's RequestCount per minute (None: no datapoint): published into
    # awsfake's metric store as time passes (tests/support/knob_metrics.py), so a change reaches
    # GetMetricData with the datapoints published after it.
    cpu: float | None = 50.0
    requests: float | None = 60.0
    alb_requests: float | None = None
    # What the hosts' workers are offered (OfferedLoad %, uncapped) and have queued
    # (BacklogSeconds); None: not published, as by a worker without these metrics.
    offered: float | None = None
    backlog: float | None = None
    # (metric name, instance id) -> a different figure for one instance (None: it is silent).
    per_instance: dict[tuple[str, str], float | None] = field(default_factory=dict)
    alarms: dict[str, str] = field(default_factory=dict)
    # operation name -> list of error codes to raise, consumed one per call
    faults: dict[str, list[str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)


@dataclass
class Fleet:
    runtime: Runtime
    clock: FakeClock
    knobs: Knobs
    settings: Settings
    subnets: tuple[str, ...]
    zones: tuple[str, ...]
    target_group: FakeTargetGroup
    fake_instances: FakeInstances
    metrics: KnobPublisher

    @property
    def ec2(self) -> Any:
        return self.runtime.clients.ec2

    @property
    def store(self) -> StateStore:
        """The fleet's state table, read and written as the functions do."""
        s = self.settings
        return StateStore(self.runtime.clients.dynamodb, s.table_name, s.fleet_name, s.history_ttl_days)

    def with_settings(self, **changes: Any) -> Fleet:
        settings = self.settings.replace(**changes)
        runtime = replace(self.runtime, settings=settings)
        return replace(self, runtime=runtime, settings=settings)

    def instances(
        self, states: tuple[str, ...] = ("pending", "running", "stopping", "stopped")
    ) -> list[dict[str, Any]]:
        response = self.ec2.describe_instances(
            Filters=[
                {"Name": "tag:AutoscalerFleet", "Values": [self.settings.fleet_name]},
                {"Name": "instance-state-name", "Values": list(states)},
            ]
        )
        return [i for r in response["Reservations"] for i in r["Instances"]]

    def lifecycle_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for instance in self.instances():
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            key = f"{tags.get('AutoscalerLifecycle')}:{instance['State']['Name']}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def settle(self) -> None:
        """Let time pass until EC2 has ended every transition under way (``pending``,
        ``stopping``, ``shutting-down``)."""
        self.clock.advance(self.fake_instances.settled_at() - self.clock.now().timestamp())

    def mark_ready(self, instance_ids: list[str] | None = None) -> None:
        """What the instance's user-data does once /ping answers through nginx: on an instance
        that has booted, so time passes until none of them is ``pending``."""
        ids = instance_ids or [i["InstanceId"] for i in self.instances()]
        pending = [i for i in ids if self.fake_instances.state_of(i) == "pending"]
        if pending:
            self.settle()
        if ids:
            self.ec2.create_tags(Resources=ids, Tags=[{"Key": "AutoscalerReady", "Value": "true"}])

    def registered(self) -> set[str]:
        """The targets DescribeTargetHealth lists (draining ones too, as ELB does)."""
        return set(self.target_health())

    def target_health(self) -> dict[str, str]:
        response = self.runtime.clients.elbv2.describe_target_health(TargetGroupArn=self.settings.target_group_arn)
        return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in response["TargetHealthDescriptions"]}


def _install_knobs(clients: AwsClients, knobs: Knobs, metrics: KnobPublisher) -> None:
    def record(model: Any, **_: Any) -> None:
        knobs.calls.append(f"{model.service_model.service_name}:{model.name}")

    def metric_data(params: dict[str, Any]) -> dict[str, Any]:
        """What the hosts and the load balancer published by now, answered as the twin answers."""
        now = metrics.catch_up()
        return get_metric_data(metrics.store, params, now, _seconds, _wall)

    def describe_alarms(params: dict[str, Any]) -> dict[str, Any]:
        names = params.get("AlarmNames", [])
        alarms = [{"AlarmName": n, "StateValue": knobs.alarms.get(n, "OK")} for n in names]
        return {"MetricAlarms": alarms, "CompositeAlarms": [], "ResponseMetadata": {"HTTPStatusCode": 200}}

    for client in (clients.ec2, clients.elbv2, clients.cloudwatch, clients.dynamodb):
        inject_faults(client, knobs.faults)
        client.meta.events.register("before-call.*.*", record)
    answer(clients.cloudwatch, "cloudwatch.GetMetricData", metric_data)
    answer(clients.cloudwatch, "cloudwatch.DescribeAlarms", describe_alarms)


def build_fleet(
    clock: FakeClock | None = None, registration_seconds: float = REGISTRATION_SECONDS, **overrides: Any
) -> Fleet:
    """Inside ``mock_aws``: a VPC with two subnets in two AZs, a launch template, a target group
    (its health from ``awsfake``, on ``clock``), instance states (``awsfake``'s, on ``clock``)
    and the state table, plus a Runtime wired to them. ``overrides`` change the template's settings."""
    clock = clock or FakeClock()
    session = boto3.session.Session(region_name=REGION)
    clients = AwsClients.create(session=session, region=REGION)
    ec2 = clients.ec2
    network = create_network(ec2)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    launch_template = create_launch_template(ec2, "fleet-workers", image, "c7g.medium")
    defaults = template_parameter_defaults()
    arn, _ = create_target_group(
        clients.elbv2, "fleet-workers", network.vpc, deregistration_delay=int(defaults["DeregistrationDelaySeconds"])
    )
    create_state_table(clients.dynamodb, "fleet-state")
    subnets, zones = network.subnets, network.zones
    values: dict[str, Any] = {
        "fleet_name": "fleet",
        "table_name": "fleet-state",
        "launch_template_id": launch_template.template_id,
        # A number, as the template sets it (LatestVersionNumber): instances carry it in their tag.
        "launch_template_version": str(launch_template.latest_version),
        "subnet_ids": subnets,
        "target_group_arn": arn,
        "target_group_dimension": "targetgroup/fleet-workers/0123456789abcdef",
        "load_balancer_dimension": "app/fleet-lb/0123456789abcdef",
        "scale_out_alarm_names": OUT_ALARMS,
        "scale_in_alarm_names": IN_ALARMS,
        "running_wait_seconds": 10,
        "lease_wait_seconds": 5,
    }
    settings = template_settings(**{**values, **overrides})
    knobs = Knobs()
    fake_instances = FakeInstances(
        lambda: clock.now().timestamp(),
        _wall,
        launch_pending_seconds=PENDING_SECONDS,
        start_pending_seconds=PENDING_SECONDS,
        stop_seconds=HALT_SECONDS,
        terminate_seconds=HALT_SECONDS,
    )
    metrics = KnobPublisher(knobs, settings, fake_instances, lambda: clock.now().timestamp())
    _install_knobs(clients, knobs, metrics)
    rules = HealthRules(int(defaults["HealthyThresholdCount"]), int(defaults["UnhealthyThresholdCount"]))

    def reported(instance_id: str) -> str | None:
        return knobs.health.get(instance_id)  # looked up each time: tests replace the dict

    target_group = FakeTargetGroup(arn, lambda: clock.now().timestamp(), rules, registration_seconds, reported)
    target_group.install(clients.elbv2)
    fake_instances.install(ec2)
    runtime = Runtime(settings=settings, clients=clients, clock=clock)
    return Fleet(runtime, clock, knobs, settings, subnets, zones, target_group, fake_instances, metrics)


def at_rest(fleet: Fleet, max_size: int = 10) -> Fleet:
    """The fleet created and settled: one instance in service, one stopped in the warm pool."""
    from autoscaler import entrypoints

    fleet = fleet.with_settings(max_size=max_size)
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    fleet.clock.advance(30)
    entrypoints.reconcile(fleet.runtime)
    fleet.settle()
    assert fleet.lifecycle_counts() == {"service:running": 1, "pool:stopped": 1}
    return fleet
