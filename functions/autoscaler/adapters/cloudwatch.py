"""CloudWatch adapter: fleet metrics at decision time and the scaling alarms' states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from autoscaler.model import Direction, Metrics
from autoscaler.settings import Settings

# ALB request metrics exist only at one-minute resolution (ELB user guide, "CloudWatch metrics for
# your Application Load Balancer": published in 60-second intervals).
ELB_PERIOD_SECONDS = 60


class FleetSignals:
    def __init__(self, client: Any, settings: Settings) -> None:
        self._cw = client
        self._settings = settings

    def read(self, now: datetime) -> Metrics:
        """Both signals in one GetMetricData call.

        CPU is the mean of the fleet metric's datapoints over the decision window (and over the
        shorter scale-out window, from the same datapoints). Requests use the latest complete
        minute: a minute still in progress would under-count.
        """
        s = self._settings
        window = timedelta(seconds=s.metric_window_seconds)
        response = self._cw.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "cpu",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": s.cpu_metric_namespace,
                            "MetricName": s.cpu_metric_name,
                            "Dimensions": [{"Name": "Fleet", "Value": s.fleet_name}],
                        },
                        "Period": s.cpu_metric_period_seconds,
                        "Stat": "Average",
                    },
                },
                {
                    "Id": "requests",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/ApplicationELB",
                            "MetricName": "RequestCountPerTarget",
                            "Dimensions": [{"Name": "TargetGroup", "Value": s.target_group_dimension}],
                        },
                        "Period": ELB_PERIOD_SECONDS,
                        "Stat": "Sum",
                    },
                },
            ],
            StartTime=now - max(window, timedelta(seconds=3 * ELB_PERIOD_SECONDS)),
            EndTime=now,
            ScanBy="TimestampDescending",
        )
        series = {r["Id"]: r for r in response.get("MetricDataResults", [])}
        return Metrics(
            cpu_percent=_mean_since(series.get("cpu"), now - window),
            requests_per_target=_latest_complete(series.get("requests"), now, ELB_PERIOD_SECONDS),
            cpu_recent_percent=_mean_since(series.get("cpu"), now - timedelta(seconds=s.scale_out_window_seconds)),
        )

    def alarm_states(self, names: Sequence[str]) -> dict[str, str]:
        """Current state (OK, ALARM, INSUFFICIENT_DATA) of each named alarm that exists (one
        DescribeAlarms call, metric and composite alarms)."""
        if not names:
            return {}
        response = self._cw.describe_alarms(AlarmNames=list(names), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        return {
            alarm["AlarmName"]: str(alarm.get("StateValue"))
            for key in ("MetricAlarms", "CompositeAlarms")
            for alarm in response.get(key, [])
        }

    def active_directions(self) -> frozenset[Direction]:
        """Directions whose scaling alarms are in ALARM now (one DescribeAlarms call)."""
        s = self._settings
        states = self.alarm_states(s.all_alarm_names)
        in_alarm = {name for name, state in states.items() if state == "ALARM"}
        active = set()
        if in_alarm & set(s.scale_out_alarm_names):
            active.add(Direction.OUT)
        if in_alarm & set(s.scale_in_alarm_names):
            active.add(Direction.IN)
        return frozenset(active)


def _points(result: dict[str, Any] | None) -> list[tuple[datetime, float]]:
    if not result:
        return []
    return list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))


def _mean_since(result: dict[str, Any] | None, start: datetime) -> float | None:
    values = [v for t, v in _points(result) if t >= start]
    return sum(values) / len(values) if values else None


def _latest_complete(result: dict[str, Any] | None, now: datetime, period: int) -> float | None:
    complete = [(t, v) for t, v in _points(result) if t + timedelta(seconds=period) <= now]
    return max(complete)[1] if complete else None
