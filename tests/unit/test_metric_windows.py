"""The CloudWatch adapter's reads, against a GetMetricData that honours what a query asks for.

The fake is ``awsfake.metrics``, the one the twin and the fleet tests use: datapoints kept per metric (namespace,
name, exact dimension set), period statistics, the time range, and datapoints that arrive late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from autoscaler.adapters.cloudwatch import MAX_QUERIES, FleetSignals
from autoscaler.runtime import policy_from_settings
from autoscaler.signals import demand

from awsfake.metrics import MetricStore, get_metric_data, metric_key
from tests.unit.builders import DECIDED_AT, settings

EPOCH = DECIDED_AT - timedelta(hours=1)


def sim(when: datetime) -> float:
    return (when - EPOCH).total_seconds()


class FakeCloudWatch:
    def __init__(self, store: MetricStore, now: datetime) -> None:
        self.store = store
        self.now = now
        self.calls: list[dict[str, Any]] = []

    def get_metric_data(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return get_metric_data(self.store, params, sim(self.now), sim, lambda t: EPOCH + timedelta(seconds=t))


def put(store: MetricStore, name: str, instance: str | None, at: datetime, value: float, late: float = 0.0) -> None:
    s = settings()
    dims = [("Fleet", s.fleet_name)] + ([("InstanceId", instance)] if instance else [])
    store.put(metric_key(s.cpu_metric_namespace, name, dims), sim(at), value, sim(at) + late)


def test_reads_each_instance_in_service_and_only_its_own_metric():
    s = settings()
    store = MetricStore()
    for k in range(1, 8):
        at = DECIDED_AT - timedelta(seconds=10 * k)
        put(store, "CPUUtilization", "i-a", at, 60.0)
        put(store, "CPUUtilization", "i-b", at, 30.0)
        put(store, "CPUUtilization", "i-gone", at, 99.0)  # drained: not asked for
        put(store, "CPUUtilization", None, at, 45.0)  # the fleet series the alarms watch
        put(store, "RequestsPerMinute", "i-a", at, 70.0)
        put(store, "Other", "i-a", at, 1000.0)
    client = FakeCloudWatch(store, DECIDED_AT)
    signals = policy_from_settings(s).signals
    data = FleetSignals(client, s).read(signals, ["i-a", "i-b"], DECIDED_AT)
    assert set(data["cpu"].per_instance) == {"i-a", "i-b"}
    assert {v for _, v in data["cpu"].per_instance["i-a"]} == {60.0}
    assert {v for _, v in data["requests"].per_instance["i-a"]} == {70.0}
    assert "i-b" not in data["requests"].per_instance or not data["requests"].per_instance["i-b"]
    # One call for every signal and instance; the range covers the longest window and no more.
    (call,) = client.calls
    assert call["EndTime"] == DECIDED_AT
    assert call["StartTime"] == DECIDED_AT - timedelta(seconds=max(sp.window_seconds for sp in signals))
    cpu = demand(signals[0], data["cpu"], ["i-a", "i-b"], DECIDED_AT)
    assert cpu.settled == 90.0  # 60 + 30 in every complete period of the minute


def test_datapoints_outside_the_window_or_not_yet_arrived_are_not_read():
    s = settings()
    store = MetricStore()
    put(store, "CPUUtilization", "i-a", DECIDED_AT - timedelta(seconds=300), 99.0)  # long before the window
    put(store, "CPUUtilization", "i-a", DECIDED_AT - timedelta(seconds=40), 50.0)
    put(store, "CPUUtilization", "i-a", DECIDED_AT - timedelta(seconds=10), 80.0, late=30.0)  # still in flight
    signals = policy_from_settings(s).signals
    data = FleetSignals(FakeCloudWatch(store, DECIDED_AT), s).read(signals, ["i-a"], DECIDED_AT)
    assert [v for _, v in data["cpu"].per_instance["i-a"]] == [50.0]


def test_the_load_balancer_count_is_read_once_for_the_fleet():
    s = settings()
    store = MetricStore()
    dimensions = [("TargetGroup", s.target_group_dimension), ("LoadBalancer", s.load_balancer_dimension)]
    key = metric_key("AWS/ApplicationELB", "RequestCount", dimensions)
    minute = DECIDED_AT.replace(second=0) - timedelta(minutes=2)
    store.put(key, sim(minute), 300.0, sim(minute) + 60)
    signals = policy_from_settings(s).signals
    data = FleetSignals(FakeCloudWatch(store, DECIDED_AT), s).read(signals, ["i-a"], DECIDED_AT)
    guard = next(sp for sp in signals if sp.scale_out_only)
    assert demand(guard, data[guard.name], ["i-a"], DECIDED_AT).recent == 300.0


def test_a_large_fleet_is_read_in_calls_of_at_most_500_queries():
    s = settings()
    client = FakeCloudWatch(MetricStore(), DECIDED_AT)
    signals = policy_from_settings(s).signals
    FleetSignals(client, s).read(signals, [f"i-{n}" for n in range(300)], DECIDED_AT)
    queries = sum(300 if spec.query.per_instance else 1 for spec in signals)  # one per series
    assert queries > MAX_QUERIES
    sizes = [len(c["MetricDataQueries"]) for c in client.calls]
    assert sizes == [MAX_QUERIES] * (queries // MAX_QUERIES) + [queries % MAX_QUERIES]


class PagedCloudWatch:
    """GetMetricData answering in pages, as it does when the datapoints exceed one response."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def get_metric_data(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return self.pages[len(self.calls) - 1]


def test_every_page_of_an_answer_is_read_with_the_token_of_the_page_before():
    s = settings()
    signals = policy_from_settings(s).signals
    early, late = DECIDED_AT - timedelta(seconds=20), DECIDED_AT - timedelta(seconds=10)
    client = PagedCloudWatch(
        [
            {"MetricDataResults": [{"Id": "s0_0", "Timestamps": [late], "Values": [70.0]}], "NextToken": "page-2"},
            {"MetricDataResults": [{"Id": "s0_0", "Timestamps": [early], "Values": [60.0]}]},
        ]
    )
    data = FleetSignals(client, s).read(signals, ["i-a"], DECIDED_AT)
    assert [c.get("NextToken") for c in client.calls] == [None, "page-2"]
    assert client.calls[0]["MetricDataQueries"] == client.calls[1]["MetricDataQueries"]
    assert list(data["cpu"].per_instance["i-a"]) == [(late, 70.0), (early, 60.0)]


class Alarms:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def describe_alarms(self, **_: Any) -> dict[str, Any]:
        return self.answer


def test_an_alarm_described_without_a_state_counts_as_insufficient_data():
    # Every member of the MetricAlarm and CompositeAlarm data types is optional in the
    # CloudWatch API reference ("Required: No"), StateValue included.
    client = Alarms(
        {
            "MetricAlarms": [{"AlarmName": "fleet-cpu-high", "StateValue": "ALARM"}, {"AlarmName": "fleet-cpu-low"}],
            "CompositeAlarms": [{"AlarmName": "fleet-scale-in"}],
        }
    )
    states = FleetSignals(client, settings()).alarm_states(["fleet-cpu-high", "fleet-cpu-low", "fleet-scale-in"])
    assert states == {
        "fleet-cpu-high": "ALARM",
        "fleet-cpu-low": "INSUFFICIENT_DATA",
        "fleet-scale-in": "INSUFFICIENT_DATA",
    }
