"""CloudWatch adapter: the signals' metric data at decision time and the scaling alarms' states."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from autoscaler.model import Direction
from autoscaler.signals import Point, SignalData, SignalSpec

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import (
        DimensionTypeDef,
        GetMetricDataInputTypeDef,
        MetricDataQueryTypeDef,
        MetricDataResultTypeDef,
    )

    from autoscaler.settings import Settings

# GetMetricData takes at most 500 queries per call (API reference, MetricDataQueries).
MAX_QUERIES = 500


class FleetSignals:
    def __init__(self, client: CloudWatchClient, settings: Settings) -> None:
        self._cw = client
        self._settings = settings

    def read(self, signals: Sequence[SignalSpec], in_service: Sequence[str], now: datetime) -> dict[str, SignalData]:
        """Every signal's datapoints in one GetMetricData call (one more per 500 queries).

        Per-instance signals are asked for each instance in service (the InstanceId dimension);
        the others once for the fleet. The range covers the longest window.
        """
        queries: list[MetricDataQueryTypeDef] = []
        owners: dict[str, tuple[str, str | None]] = {}  # query id -> (signal, instance or None)
        for s_index, spec in enumerate(signals):
            q = spec.query
            targets: list[str | None] = list(in_service) if q.per_instance else [None]
            for i_index, instance in enumerate(targets):
                dimensions: list[DimensionTypeDef] = [{"Name": k, "Value": v} for k, v in q.dimensions]
                if instance is not None:
                    dimensions.append({"Name": "InstanceId", "Value": instance})
                query_id = f"s{s_index}_{i_index}"
                owners[query_id] = (spec.name, instance)
                queries.append(
                    {
                        "Id": query_id,
                        "MetricStat": {
                            "Metric": {"Namespace": q.namespace, "MetricName": q.metric, "Dimensions": dimensions},
                            "Period": q.period,
                            "Stat": q.stat,
                        },
                        "ReturnData": True,
                    }
                )
        if not queries:
            return {}
        longest = max(max(s.window_seconds, s.scale_out_window_seconds, s.query.period) for s in signals)
        start = now - timedelta(seconds=longest)
        per_instance: dict[str, dict[str, list[Point]]] = {s.name: {} for s in signals}
        fleet: dict[str, list[Point]] = {s.name: [] for s in signals}
        for chunk in range(0, len(queries), MAX_QUERIES):
            for result in self._get(queries[chunk : chunk + MAX_QUERIES], start, now):
                name, instance = owners[result["Id"]]
                points = list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
                if instance is None:
                    fleet[name].extend(points)
                else:
                    per_instance[name].setdefault(instance, []).extend(points)
        return {
            s.name: SignalData(
                per_instance={i: tuple(p) for i, p in per_instance[s.name].items()}, fleet=tuple(fleet[s.name])
            )
            for s in signals
        }

    def _get(
        self, queries: list[MetricDataQueryTypeDef], start: datetime, end: datetime
    ) -> list[MetricDataResultTypeDef]:
        results: list[MetricDataResultTypeDef] = []
        request: GetMetricDataInputTypeDef = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampDescending",
        }
        while True:
            response = self._cw.get_metric_data(**request)
            results.extend(response.get("MetricDataResults", []))
            token = response.get("NextToken")
            if not token:
                return results
            request["NextToken"] = token

    def alarm_states(self, names: Sequence[str]) -> dict[str, str]:
        """Current state (OK, ALARM, INSUFFICIENT_DATA) of each named alarm that exists (one
        DescribeAlarms call, metric and composite alarms)."""
        if not names:
            return {}
        response = self._cw.describe_alarms(AlarmNames=list(names), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        alarms = [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]
        # StateValue is optional in the response shape: an alarm without one has no known state.
        return {alarm["AlarmName"]: alarm.get("StateValue", "INSUFFICIENT_DATA") for alarm in alarms}

    def active_directions(self, states: Mapping[str, str] | None = None) -> frozenset[Direction]:
        """Directions whose scaling alarms are in ALARM now: from ``states`` (alarm_states of a
        call that named them), or one DescribeAlarms call."""
        s = self._settings
        states = self.alarm_states(s.all_alarm_names) if states is None else states
        in_alarm = {name for name, state in states.items() if state == "ALARM"}
        active = set()
        if in_alarm & set(s.scale_out_alarm_names):
            active.add(Direction.OUT)
        if in_alarm & set(s.scale_in_alarm_names):
            active.add(Direction.IN)
        return frozenset(active)
