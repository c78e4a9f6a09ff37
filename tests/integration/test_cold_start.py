"""Each function after a cold start with the template's environment (tests/support/cold_start.py):
it logs at the template's level under its own service name, it acts, and the metrics it emits
are the ones the dashboard queries."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from fleet_template.cfn import function_environment, load_template, parameter_values, resolve
from tests.support.cold_start import RESULT_PREFIX, ROOT
from tests.support.lambda_env import FUNCTIONS, TEMPLATE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLEET = "fleet"  # tests/support/aws.build_fleet's
PARAMETERS = {"VpcId": "vpc-0123456789abcdef0", "SubnetIds": "subnet-0aaa,subnet-0bbb", "FleetName": FLEET}


@dataclass
class ColdStart:
    logical_id: str
    logs: list[dict[str, Any]]
    emf: list[dict[str, Any]]
    result: dict[str, Any]


@pytest.fixture(scope="module")
def cold_starts() -> dict[str, ColdStart]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_LAMBDA_"))}
    env.pop("LOG_LEVEL", None)
    env["PYTHONPATH"] = str(ROOT / "functions")  # the function's code root, on the path as in Lambda
    runs = {
        logical_id: subprocess.Popen(
            [sys.executable, "-m", "tests.support.cold_start", logical_id],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for logical_id in FUNCTIONS
    }
    out: dict[str, ColdStart] = {}
    for logical_id, process in runs.items():
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, f"{logical_id} failed:\n{stderr[-3000:]}"
        lines = stdout.splitlines()
        assert lines and lines[-1].startswith(RESULT_PREFIX), stdout[-2000:]
        blobs = [json.loads(line) for line in lines[:-1] if line.startswith("{")]
        out[logical_id] = ColdStart(
            logical_id,
            logs=[b for b in blobs if "_aws" not in b],
            emf=[b for b in blobs if "_aws" in b],
            result=json.loads(lines[-1][len(RESULT_PREFIX) :]),
        )
    return out


def _template_env(logical_id: str) -> dict[str, str]:
    template = load_template(TEMPLATE)
    return function_environment(template, logical_id, parameter_values(template, PARAMETERS))


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_each_function_acts_after_a_cold_start_with_the_template_environment(cold_starts, logical_id):
    run = cold_starts[logical_id]
    env = _template_env(logical_id)
    if logical_id == "LifecycleFunction":
        assert run.result["reply"]["Status"] == "SUCCESS", run.result
    else:
        outcomes = run.result.get("results", [run.result])
        assert all(o["status"] == "acted" for o in outcomes), outcomes
    assert run.logs, "no log line"
    assert {line["level"] for line in run.logs} <= {"INFO", "WARNING"}
    assert any(line["level"] == env["POWERTOOLS_LOG_LEVEL"] for line in run.logs)
    assert {line["service"] for line in run.logs} == {env["POWERTOOLS_SERVICE_NAME"]}
    assert any(line["message"] == "decision" for line in run.logs)


def test_a_scale_out_publishes_the_fleet_metrics(cold_starts):
    run = cold_starts["ScaleOutFunction"]
    names = {m["Name"] for blob in run.emf for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"Desired", "InService", "Booting", "Pool", "Decisions", "DecisionLatency", "DecisionsByReason"} <= names
    assert {b["Reason"] for b in run.emf if "Reason" in b} == {"scale-out"}
    assert {b["_aws"]["CloudWatchMetrics"][0]["Namespace"] for b in run.emf} == {
        _template_env("ScaleOutFunction")["POWERTOOLS_METRICS_NAMESPACE"]
    }
    assert all(b["Fleet"] == FLEET for b in run.emf)


# ---------------------------------------------------------------------------------- dashboard


def _emitted(cold_starts: dict[str, ColdStart]) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    """(namespace, metric, {dimension: value}) for every metric the functions emit as EMF, and
    for the worker hosts' CPU metric (worker/metrics_publisher.py, through a recording client)."""
    emitted = set()
    for run in cold_starts.values():
        for blob in run.emf:
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for dimensions in directive["Dimensions"]:
                    dims = frozenset((d, str(blob[d])) for d in dimensions)
                    emitted |= {(directive["Namespace"], m["Name"], dims) for m in directive["Metrics"]}

    from worker.metrics_publisher import CloudWatchSink, Reading

    class Recording:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def put_metric_data(self, **kwargs: Any) -> None:
            self.calls.append(kwargs)

    client = Recording()
    user_data = load_template(TEMPLATE)["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    namespace = user_data["Fn::Base64"]["Fn::Sub"][1]["CpuMetricNamespace"]
    CloudWatchSink(FLEET, "i-0123456789abcdef0", namespace=namespace, client=client)(
        Reading(50.0, 60.0), datetime.now(UTC)
    )
    for call in client.calls:
        for datum in call["MetricData"]:
            dims = frozenset((d["Name"], d["Value"]) for d in datum["Dimensions"])
            emitted.add((call["Namespace"], datum["MetricName"], dims))
    return emitted


def _dashboard_queries() -> tuple[list[tuple[str, str, dict[str, str]]], list[tuple[str, list[str], str, dict]]]:
    """The dashboard's metrics (namespace, name, dimensions), expanding "." and "...", and its
    SEARCH expressions (namespace, schema dimensions, metric name, other terms)."""
    template = load_template(TEMPLATE)
    body = resolve(
        template["Resources"]["Dashboard"]["Properties"]["DashboardBody"],
        parameter_values(template, PARAMETERS),
        template,
    )
    metrics: list[tuple[str, str, dict[str, str]]] = []
    searches: list[tuple[str, list[str], str, dict]] = []
    for widget in json.loads(body)["widgets"]:
        previous: list[str] = []
        for entry in widget["properties"].get("metrics", []):
            fields = [f for f in entry if not isinstance(f, dict)]
            options = next((f for f in entry if isinstance(f, dict)), {})
            if "expression" in options:
                for schema, terms in re.findall(r"SEARCH\('\{([^}]*)\}([^']*)'", options["expression"]):
                    namespace, *dims = [part.strip() for part in schema.split(",")]
                    pairs = dict(re.findall(r'(\w+)="([^"]*)"', terms))
                    searches.append((namespace, dims, pairs.pop("MetricName"), pairs))
                continue
            if fields[:1] == ["..."]:
                fields = previous + fields[1:]
            fields = [previous[i] if f == "." else f for i, f in enumerate(fields)]
            previous = fields
            namespace, name, *dims = fields
            metrics.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True))))
    return metrics, searches


def test_every_dashboard_metric_and_search_matches_an_emitted_dimension_set(cold_starts):
    """CloudWatch matches a metric on its exact dimension set: a panel that asks for {Fleet}
    shows nothing if the functions emit {Fleet, service}."""
    emitted = _emitted(cold_starts)
    ours = {namespace for namespace, _, _ in emitted}
    metrics, searches = _dashboard_queries()
    assert searches and any(ns in ours for ns, _, _ in metrics)
    for namespace, name, dims in metrics:
        if namespace in ours:  # AWS/* metrics are AWS's own
            assert (namespace, name, frozenset(dims.items())) in emitted, (
                f"dashboard asks for {namespace}/{name} {dims}; emitted: "
                f"{[dict(d) for ns, n, d in emitted if (ns, n) == (namespace, name)]}"
            )
    for namespace, schema, name, terms in searches:
        matching = [
            dict(d)
            for ns, n, d in emitted
            if (ns, n) == (namespace, name) and {k for k, _ in d} == set(schema) and terms.items() <= dict(d).items()
        ]
        assert matching, f"SEARCH {{{namespace},{','.join(schema)}}} MetricName={name} {terms} matches nothing emitted"
