"""The datapoints a test fleet's hosts and load balancer publish, from the test's knobs.

A test says what the hosts measure (``Knobs.cpu``, ``requests``, ``per_instance``) and what the
load balancer counts (``alb_requests``); this publisher puts the datapoints they would have
sent into ``awsfake.metrics``' store, each visible some seconds after its timestamp, and the
store answers GetMetricData as it does for the twin (exact dimensions, period statistics, time
range, late datapoints).

It publishes when GetMetricData is asked, for every publishing time since it last did (the
first time, for the hour before): each instance then in service and running publishes the
knobs' figures as they are at that moment. A figure once published does not change: turning a
knob reaches the metric windows only with the datapoints published after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from autoscaler.signals import BACKLOG_METRIC, OFFERED_LOAD_METRIC

from awsfake import moto_backends
from awsfake.fleet_instances import FakeInstances
from awsfake.metrics import MetricStore, metric_key

if TYPE_CHECKING:
    from autoscaler.settings import Settings

# The hosts' publisher sends every 10 s (worker/metrics_publisher.py); a datapoint is visible
# "seconds after" PutMetricData (AWS News Blog, "New - High-Resolution Custom Metrics and Alarms
# for Amazon CloudWatch", 2017: no figure; the twin's cpu_metric_delay_seconds spans 2-30 s).
HOST_PERIOD = 10.0
HOST_DELAY = 2.0
# RequestCount: one Sum per minute while requests flow, visible about a minute or more after
# the minute ends (ELB user guide "CloudWatch metrics for your Application Load Balancer").
ALB_PERIOD = 60.0
ALB_DELAY = 60.0
BACKFILL_SECONDS = 3600.0
FLEET_TAG, LIFECYCLE_TAG = "AutoscalerFleet", "AutoscalerLifecycle"


class MetricKnobs(Protocol):
    cpu: float | None
    requests: float | None
    alb_requests: float | None
    offered: float | None
    backlog: float | None
    per_instance: dict[tuple[str, str], float | None]


class KnobPublisher:
    def __init__(
        self, knobs: MetricKnobs, settings: Settings, instances: FakeInstances, now: Callable[[], float]
    ) -> None:
        self.knobs = knobs
        self.settings = settings
        self.instances = instances
        self.now = now
        self.store = MetricStore()
        self._published: float | None = None  # the last host publishing time done

    def catch_up(self) -> float:
        """Publish every datapoint due by now; returns now."""
        now = self.now()
        first = now - BACKFILL_SECONDS if self._published is None else self._published + HOST_PERIOD
        t = math.ceil(first / HOST_PERIOD) * HOST_PERIOD
        hosts = self._in_service()
        while t <= now:
            self._hosts_publish(t, hosts)
            if t % ALB_PERIOD == 0 and t >= ALB_PERIOD:
                self._alb_publishes(t - ALB_PERIOD)  # the minute that just ended
            self._published = t
            t += HOST_PERIOD
        return now

    def _in_service(self) -> list[tuple[str, str]]:
        """(instance id, fleet name) of every running instance in service."""
        hosts = []
        for reservation in moto_backends.reservations():
            for instance in reservation.instances:
                state = self.instances.states.state_of(instance.instance_id) or instance.state
                tags = instance.tags
                if state == "running" and tags.get(LIFECYCLE_TAG) == "service" and FLEET_TAG in tags:
                    hosts.append((instance.instance_id, tags[FLEET_TAG]))
        return hosts

    def _hosts_publish(self, t: float, hosts: list[tuple[str, str]]) -> None:
        s, knobs = self.settings, self.knobs
        figures = (
            (s.cpu_metric_name, knobs.cpu),
            (s.request_metric_name, knobs.requests),
            (OFFERED_LOAD_METRIC, knobs.offered),
            (BACKLOG_METRIC, knobs.backlog),
        )
        for name, value in figures:
            for instance_id, fleet in hosts:
                figure = knobs.per_instance.get((name, instance_id), value)
                if figure is None:
                    continue
                # The worker's publisher sends both series: the host's own and the fleet's.
                for dimensions in ([("Fleet", fleet), ("InstanceId", instance_id)], [("Fleet", fleet)]):
                    self.store.put(metric_key(s.cpu_metric_namespace, name, dimensions), t, figure, t + HOST_DELAY)

    def _alb_publishes(self, minute: float) -> None:
        s, count = self.settings, self.knobs.alb_requests
        if count is None or not s.load_balancer_dimension:
            return
        dimensions = [("TargetGroup", s.target_group_dimension), ("LoadBalancer", s.load_balancer_dimension)]
        key = metric_key("AWS/ApplicationELB", "RequestCount", dimensions)
        self.store.put(key, minute, count, minute + ALB_PERIOD + ALB_DELAY)
