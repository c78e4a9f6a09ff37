"""Host demand reports: the message as the hosts send it, and its datapoints beside CloudWatch's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from autoscaler.intake import HostDemandNotice, Rejected, parse_event
from autoscaler.signals import HostReport, MetricQuery, SignalData, SignalSpec, demand, with_reports

from tests.support.events import sns_batch, sns_event

AT = datetime(2026, 1, 1, 0, 10, 7, 123000, tzinfo=UTC)
HOST = "i-0123456789abcdef0"


def message(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "AutoscalerHostDemand": 1,
        "Fleet": "fleet",
        "InstanceId": HOST,
        "Timestamp": "2026-01-01T00:10:07.123Z",
        "PeriodSeconds": 10.0,
        "Namespace": "Autoscaler",
        "Metrics": {"CPUUtilization": 100.0, "RequestsPerMinute": 300.0, "OfferedLoad": 250.0,
                    "BacklogSeconds": 12.5, "ShedRequests": 0.0},
    }  # fmt: skip
    body.update(changes)
    return body


def test_a_host_report_becomes_a_notice_with_its_datapoints():
    (notice,) = parse_event(sns_event(message()))
    assert isinstance(notice, HostDemandNotice)
    assert notice.fleet == "fleet"
    assert notice.report == HostReport(HOST, AT, "Autoscaler", message()["Metrics"])  # type: ignore[arg-type]
    assert notice.message_id


def test_a_report_and_an_alarm_in_one_event_are_both_read():
    from tests.support.events import sns_alarm_event

    items = parse_event(sns_batch(sns_alarm_event("fleet-cpu-high"), sns_event(message())))
    assert [type(i).__name__ for i in items] == ["AlarmNotice", "HostDemandNotice"]


def test_a_bad_report_is_rejected_with_what_is_wrong():
    cases = {
        "InstanceId": message(InstanceId="i-nothex!"),
        "Metrics.OfferedLoad": message(Metrics={"OfferedLoad": -1.0}),
        "Timestamp": message(Timestamp="2026-01-01T00:10:07"),  # no time zone
        "PeriodSeconds": message(PeriodSeconds=0),
        "Metrics": message(Metrics={}),
    }
    for field, body in cases.items():
        (item,) = parse_event(sns_event(body))
        assert isinstance(item, Rejected), field
        assert item.reason == "bad-host-report" and item.detail.startswith(field), (field, item.detail)
    # NaN is not JSON, and not a figure: refused either way.
    (item,) = parse_event(sns_event(json.dumps(message()).replace("250.0", "NaN")))
    assert isinstance(item, Rejected)
    (item,) = parse_event(sns_event('{"AutoscalerHostDemand": 1, '))
    assert isinstance(item, Rejected) and item.reason == "malformed-json"


def spec(name: str, metric: str, per_instance: bool = True, namespace: str = "Autoscaler") -> SignalSpec:
    query = MetricQuery(namespace, metric, (("Fleet", "fleet"),), "Average", 10, per_instance)
    return SignalSpec(name, query, 80.0, 60, 20)


def test_a_report_fills_its_period_where_cloudwatch_has_no_datapoint_yet():
    offered = spec("offered_load", "OfferedLoad")
    period = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    older = [(period - timedelta(seconds=20), 25.0), (period - timedelta(seconds=10), 30.0)]
    data = {"offered_load": SignalData({HOST: tuple(older)})}
    report = HostReport(HOST, AT, "Autoscaler", {"OfferedLoad": 250.0})
    merged = with_reports(data, [offered], [report])
    assert merged["offered_load"].per_instance[HOST] == (*older, (period, 250.0))
    now = AT + timedelta(seconds=1)
    assert demand(offered, merged["offered_load"], [HOST], now).peak == 250.0
    assert demand(offered, data["offered_load"], [HOST], now).peak == 30.0


def test_cloudwatch_wins_where_it_has_the_period_and_other_metrics_are_left_alone():
    offered, cpu = spec("offered_load", "OfferedLoad"), spec("cpu", "CPUUtilization")
    alb = spec("alb", "RequestCount", per_instance=False, namespace="AWS/ApplicationELB")
    other = spec("other", "OfferedLoad", namespace="Elsewhere")
    period = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    data = {"offered_load": SignalData({HOST: ((period, 240.0),)}), "alb": SignalData(fleet=((period, 5.0),))}
    report = HostReport(HOST, AT, "Autoscaler", {"OfferedLoad": 250.0, "CPUUtilization": 100.0})
    merged = with_reports(data, [offered, cpu, alb, other], [report])
    assert merged["offered_load"].per_instance[HOST] == ((period, 240.0),)  # CloudWatch's
    assert merged["cpu"].per_instance[HOST] == ((period, 100.0),)
    assert merged["alb"] == data["alb"] and "other" not in merged


def test_a_report_survives_the_state_item_and_a_damaged_one_is_refused():
    import pytest

    report = HostReport(HOST, AT, "Autoscaler", {"OfferedLoad": 250.0, "BacklogSeconds": 3.0})
    assert HostReport.from_json(json.loads(json.dumps(report.to_json()))) == report
    with pytest.raises(ValueError, match="not an object"):
        HostReport.from_json([HOST, AT.isoformat(), "Autoscaler", [250.0]])


def test_recent_reports_keep_one_per_host_and_period_within_the_horizon():
    from autoscaler.signals import MAX_KEPT_REPORTS, recent_reports

    def at(seconds: float) -> HostReport:
        return HostReport(HOST, AT - timedelta(seconds=seconds), "Autoscaler", {"OfferedLoad": seconds})

    kept = recent_reports([at(70), at(50), at(10), at(10)], AT, 60)
    assert [r.metrics["OfferedLoad"] for r in kept] == [50.0, 10.0]
    many = recent_reports([at(i / 100) for i in range(MAX_KEPT_REPORTS + 10)], AT, 60)
    assert len(many) == MAX_KEPT_REPORTS and many[-1] == at(0)
