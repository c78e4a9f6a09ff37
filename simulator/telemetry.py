"""What the stack publishes to CloudWatch, and what the twin observes for its report.

- Each worker host's metric publisher (worker/metrics_publisher.py): at every multiple of 10 s
  of the clock, the same instants on every host (the first at least 5 s after the host's
  services start), in one call sent within a second of it: host CPU and the /work request rate over
  the period, the offered load (the CPU the period's arrivals need, by the worker's mean
  service time; not capped), the backlog (queued work, in seconds of the host) and
  the requests shed (503) in the period, each with the fleet dimension and with the fleet and
  instance dimensions, only while the host is in service and its worker answers. The call's
  datapoints become visible after its own publication delay. A period whose offered load is at
  or over the panic line also goes, at once, to the demand topic (``report``).
- The load balancer: per minute, RequestCount (per target group) and RequestCountPerTarget,
  only when requests flowed, late.
- EC2's own CPUUtilization per instance (for the baselines): per-minute samples, stamped with
  the start of their 1-minute (detailed) or 5-minute (basic) period, late.
- The observer: every 10 s of scenario time a sample for the report and the chart, and the exact
  times the count of instances in service changes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import simpy
from autoscaler.model import FleetCounts, Instance, Lifecycle, TargetHealth
from autoscaler.signals import BACKLOG_METRIC, OFFERED_LOAD_METRIC

from awsfake.instances import RUNNING, SHUTTING_DOWN, TERMINATED
from awsfake.metrics import MetricKey, MetricStore, metric_key
from simulator.balancer import Balancer
from simulator.ec2 import Ec2Model, Machine
from simulator.params import ModelParams
from simulator.refresh import FleetPoint
from simulator.traffic import TrafficEngine
from simulator.workers import PUT_SPREAD_SHARE, next_boundary

PUBLISH_PERIOD = 10.0
SAMPLE_SECONDS = 10.0
SAMPLE_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # launch times play no part in the counts
# Published beside OfferedLoad and BacklogSeconds (worker/metrics_publisher.py); nothing reads it
# to scale, it is for the operator and the report.
SHED_METRIC = "ShedRequests"
LEAVING_STATES = frozenset({SHUTTING_DOWN, TERMINATED})  # not alive (autoscaler.model.Instance.alive)


@dataclass(frozen=True)
class HostMetricNames:
    """The host publisher's metrics (docs/contracts.md)."""

    namespace: str
    cpu: str
    request_rate: str
    fleet: str
    offered_load: str = OFFERED_LOAD_METRIC
    backlog: str = BACKLOG_METRIC
    shed: str = SHED_METRIC

    def keys(self, instance_id: str) -> dict[str, tuple[MetricKey, MetricKey]]:
        """Per metric name, its (fleet, fleet and instance) keys: every datapoint goes to both."""
        fleet = [("Fleet", self.fleet)]
        host = [("Fleet", self.fleet), ("InstanceId", instance_id)]
        names = (self.cpu, self.request_rate, self.offered_load, self.backlog, self.shed)
        return {n: (metric_key(self.namespace, n, fleet), metric_key(self.namespace, n, host)) for n in names}


class HostPublishers:
    """One publisher process per booted host."""

    def __init__(
        self,
        env: simpy.Environment,
        engine: TrafficEngine,
        ec2: Ec2Model,
        store: MetricStore,
        params: ModelParams,
        rng: random.Random,
        names: HostMetricNames,
        report: Callable[[str, float, dict[str, float]], None] | None = None,
        report_line: float = math.inf,
    ) -> None:
        self.env = env
        self.engine = engine
        self.ec2 = ec2
        self.store = store
        self.params = params
        self.rng = rng
        self.names = names
        # (instance, time, the period's values by metric name): a host demand report to send.
        self.report = report
        self.report_line = report_line
        self.vcpus = ec2.vcpus
        self.published: list[tuple[float, float]] = []  # (time, CPU) of every fleet datapoint, for the chart

    def start(self, machine: Machine) -> None:
        self.env.process(self._run(machine, machine.generation))

    def _run(self, machine: Machine, generation: int) -> Generator[Any, Any, None]:
        instance_id = machine.instance_id
        keys = self.names.keys(instance_id)
        names = self.names
        host = self.engine.hosts[instance_id].host
        # The first tick only takes the baseline of the first delta, like run_forever().
        last = self.env.now
        busy = self.engine.busy_seconds(last, instance_id)
        arrivals, shed = host.arrivals, host.shed
        while True:
            # Scenario time 0 is a multiple of the period on the epoch (SIM_EPOCH is midnight).
            yield self.env.timeout(next_boundary(self.env.now, PUBLISH_PERIOD) - self.env.now)
            if machine.generation != generation:
                return
            now = self.env.now
            elapsed, last = now - last, now
            new_busy = self.engine.busy_seconds(now, instance_id)  # advances the traffic to now
            new_arrivals, new_shed = host.arrivals, host.shed
            count = new_arrivals - arrivals
            values = {
                names.cpu: host.cpu_percent(new_busy - busy, elapsed, self.vcpus),
                names.request_rate: count * 60.0 / elapsed,  # requests per minute
                names.offered_load: host.offered_load_percent(count, elapsed),
                names.backlog: host.backlog_seconds(self.engine.queued(now, instance_id)),
                names.shed: float(new_shed - shed),
            }
            busy, arrivals, shed = new_busy, new_arrivals, new_shed
            if machine.lifecycle != "service" or not machine.worker_up:
                continue
            if self.report is not None and values[names.offered_load] >= self.report_line:
                self.report(instance_id, now, values)  # before PutMetricData, as the host does
            # One call, one delay, sent within a tenth of the period after the tick.
            sent = now + PUT_SPREAD_SHARE * PUBLISH_PERIOD * self.rng.random()
            visible = sent + self.params.cpu_metric_delay_seconds.sample(self.rng)
            for name, value in values.items():
                for key in keys[name]:
                    self.store.put(key, now, value, visible)
            self.published.append((now, values[names.cpu]))


class LoadBalancerMetrics:
    """RequestCount and RequestCountPerTarget per minute (only when requests flowed), late."""

    def __init__(
        self,
        env: simpy.Environment,
        engine: TrafficEngine,
        balancer: Balancer,
        store: MetricStore,
        params: ModelParams,
        rng: random.Random,
        target_group: str,
        load_balancer: str,
    ) -> None:
        self.env = env
        self.engine = engine
        self.balancer = balancer
        self.store = store
        self.params = params
        self.rng = rng
        self.per_target = metric_key("AWS/ApplicationELB", "RequestCountPerTarget", [("TargetGroup", target_group)])
        self.count = metric_key(
            "AWS/ApplicationELB", "RequestCount", [("TargetGroup", target_group), ("LoadBalancer", load_balancer)]
        )

    def run(self) -> Generator[Any, Any, None]:
        healthy: list[int] = []
        while True:
            yield self.env.timeout(SAMPLE_SECONDS)
            healthy.append(self.balancer.healthy_count())
            now = self.env.now
            if now % 60:
                continue
            self.engine.advance_to(now)
            minute = int(now // 60) - 1
            count = self.engine.log.per_minute.get(minute, 0)
            targets = sum(healthy) / len(healthy) if healthy else 0
            healthy = []
            if count:
                visible = now + self.params.alb_metric_delay_seconds.sample(self.rng)
                self.store.put(self.count, minute * 60.0, float(count), visible)
                if targets:
                    self.store.put(self.per_target, minute * 60.0, count / targets, visible)


class Ec2Metrics:
    """AWS/EC2 CPUUtilization per instance (and per group, for target tracking)."""

    def __init__(
        self,
        env: simpy.Environment,
        engine: TrafficEngine,
        ec2: Ec2Model,
        store: MetricStore,
        params: ModelParams,
        rng: random.Random,
        period: int,
        group: str,
    ) -> None:
        self.env = env
        self.engine = engine
        self.ec2 = ec2
        self.store = store
        self.params = params
        self.rng = rng
        self.period = period
        self.group_key = metric_key("AWS/EC2", "CPUUtilization", [("AutoScalingGroupName", group)])
        self.last: dict[str, float] = {}

    def run(self) -> Generator[Any, Any, None]:
        while True:
            yield self.env.timeout(60.0)
            now = self.env.now
            stamp = math.floor((now - 60.0) / self.period) * self.period
            for instance_id, machine in self.ec2.machines.items():
                busy = self.engine.busy_seconds(now, instance_id)
                previous = self.last.get(instance_id, busy)
                self.last[instance_id] = busy
                if machine.state != RUNNING:
                    continue
                host = self.engine.hosts[instance_id].host
                installing = machine.booted and not machine.installed
                cpu = 100.0 if installing else host.cpu_percent(busy - previous, 60.0, self.ec2.vcpus)
                visible = now + self.params.ec2_metric_delay_seconds.sample(self.rng)
                key = metric_key("AWS/EC2", "CPUUtilization", [("InstanceId", instance_id)])
                self.store.put(key, stamp, cpu, visible)
                if machine.lifecycle == "service" and machine.worker_up:
                    self.store.put(self.group_key, stamp, cpu, visible)


@dataclass
class Sample:
    t: float  # scenario seconds (negative during warm-up)
    load: float
    in_service: int
    booting: int
    pool: int
    warming: int
    cpu: float | None
    alarms: dict[str, str]
    # Of in_service and pool, those of the version the latest deploy created (0 before any).
    new_in_service: int = 0
    new_pool: int = 0


def _no_desired() -> int | None:
    return None


@dataclass
class Observer:
    """Samples for the report and the chart, the exact in-service timeline, and the fleet at
    every change (in service, desired, instances by launch template version) for the deploys."""

    env: simpy.Environment
    ec2: Ec2Model
    balancer: Balancer
    in_service_rule: Callable[[str, str, str], bool]
    to_scenario: Callable[[float], float]
    desired: Callable[[], int | None] = _no_desired  # the control plane's saved desired capacity
    deployed: str | None = None  # the version the latest deploy created
    samples: list[Sample] = field(default_factory=list)
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (scenario t, in service) on change
    points: list[FleetPoint] = field(default_factory=list)  # on every change of the fleet

    def in_service(self) -> int:
        rule = self.in_service_rule
        state_of = self.balancer.state_of
        return sum(1 for i, m in self.ec2.machines.items() if rule(m.lifecycle, m.state, state_of(i)))

    def changed(self) -> None:
        t = self.to_scenario(self.env.now)
        rule = self.in_service_rule
        state_of = self.balancer.state_of
        count = warming = pooled = 0
        staying: dict[str, list[int]] = {}
        for i, m in self.ec2.machines.items():
            serving = rule(m.lifecycle, m.state, state_of(i))
            count += serving
            if m.state not in LEAVING_STATES and m.lifecycle != Lifecycle.DRAINING:
                entry = staying.setdefault(m.version, [0, 0])
                entry[0] += 1
                entry[1] += serving
                warming += m.lifecycle == Lifecycle.WARMING
                pooled += m.lifecycle == Lifecycle.POOL
        if not self.timeline or self.timeline[-1][1] != count:
            self.timeline.append((t, count))
        versions = tuple((v, n, s) for v, (n, s) in sorted(staying.items()))
        point = FleetPoint(t, count, self.desired(), versions, warming, pooled)
        last = self.points[-1] if self.points else None
        if last is None or (last.in_service, last.desired, last.versions, last.warming, last.pool) != (
            count,
            point.desired,
            point.versions,
            warming,
            pooled,
        ):
            self.points.append(point)

    def sample(self, load: float, cpu: float | None, alarms: dict[str, str]) -> None:
        # The control plane's own counting rule (FleetCounts), over what EC2 and the ELB hold now.
        state_of = self.balancer.state_of
        instances = [
            (m.version, Instance(i, m.state, Lifecycle(m.lifecycle), "", "", SAMPLE_EPOCH, m.worker_up,
                                 TargetHealth(state_of(i))))
            for i, m in self.ec2.machines.items()
            if m.state != "terminated"  # the model keeps every machine it ever launched
        ]  # fmt: skip
        counts = FleetCounts.of(i for _, i in instances)
        new = FleetCounts.of(i for v, i in instances if v == self.deployed) if self.deployed else None
        t = self.to_scenario(self.env.now)
        self.samples.append(
            Sample(t, load, counts.in_service, counts.booting, counts.pool, counts.warming, cpu, alarms,
                   new.in_service if new else 0, new.pool if new else 0)
        )  # fmt: skip
