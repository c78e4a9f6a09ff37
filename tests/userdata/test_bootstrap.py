"""worker/bootstrap.sh, the boot script the worker layer carries: its arguments, its install
steps in a sandbox (run by the user-data stub, as on a host), a second run, a bad layer, ending
with a real worker behind a real nginx answering /ping."""

from __future__ import annotations

import argparse
import http.client
import json
import math
import re
import shutil
import subprocess
import threading
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.helpers_worker import (
    BOOTSTRAP,
    NGINX,
    RENDER_VALUES,
    NginxLayout,
    Sandbox,
    bootstrap_args,
    child_pids,
    http_get,
    install_sandbox,
    make_worker_zip,
    nginx_process,
    parse_unit,
    publisher_from_unit,
    run_bootstrap,
    run_user_data,
    sandbox_env,
    wait_until,
    worker_from_unit,
)
from tests.support.host_endpoints import FakeImds, running_moto_server, self_signed_cert
from tests.support.lambda_layers import FakeLayerService
from userdata.render import UnresolvedPlaceholderError, render
from worker import metrics_publisher
from worker.server import Config, build_parser, config_from_args, default_processes, proxy_read_timeout

UTC = timezone.utc  # datetime.UTC is 3.11+: these tests also run on the hosts' Python 3.9

_FAKE_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def test_render_mimics_fn_sub() -> None:
    assert render("a=${X} b=$y c=${!Lit}", {"X": "1"}) == "a=1 b=$y c=${Lit}"
    with pytest.raises(UnresolvedPlaceholderError):
        render("${Missing}", {})


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck_clean() -> None:
    subprocess.run(["shellcheck", str(BOOTSTRAP)], check=True)


def test_the_layer_carries_the_boot_script(tmp_path: Path) -> None:
    with zipfile.ZipFile(make_worker_zip(tmp_path / "layer.zip")) as zf:
        assert zf.read("bootstrap.sh") == BOOTSTRAP.read_bytes()


def _without(args: list[str], flag: str) -> list[str]:
    at = args.index(flag)
    return args[:at] + args[at + 2 :]


def _with(args: list[str], flag: str, value: str) -> list[str]:
    at = args.index(flag)
    return [*args[: at + 1], value, *args[at + 2 :]]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ([], ""),
        (_without(bootstrap_args(), "--metric-namespace"), ""),
        (_without(bootstrap_args(), "--demand-topic-arn"), ""),  # empty is allowed, absent is not
        (_without(bootstrap_args(), "--panic-threshold"), ""),
        (_with(bootstrap_args(), "--cpu-target", ""), ""),
        ([*bootstrap_args(), "--unknown", "x"], ""),
        ([*bootstrap_args(), "--region"], ""),  # an option without its value
        (
            _with(bootstrap_args(), "--demand-topic-arn", "arn:aws:sqs:eu-west-1:123456789012:q"),
            "--demand-topic-arn: not an SNS topic ARN",
        ),
        # Would be split or expanded by systemd in an Environment= line.
        (_with(bootstrap_args(), "--demand-topic-arn", RENDER_VALUES["DemandTopicArn"] + " X=1"), "not an SNS topic"),
        (_with(bootstrap_args(), "--panic-threshold", "two"), "--panic-threshold: not a number: 'two'"),
        (_with(bootstrap_args(), "--cpu-target", "80%"), "--cpu-target: not a number: '80%'"),
    ],
)
def test_missing_or_unknown_arguments_stop_with_the_usage(tmp_path: Path, args: list[str], reason: str) -> None:
    result = run_bootstrap(BOOTSTRAP, sandbox_env(tmp_path / "root", 30000, 30001), args)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert reason in result.stderr
    assert not (tmp_path / "root").exists()


def test_install_steps_in_a_sandbox(tmp_path: Path) -> None:
    box = install_sandbox(tmp_path)
    package = box.app_dir / "worker"
    assert (package / "__main__.py").is_file()
    assert (package / "metrics_publisher.py").is_file()
    assert box.marker.read_text() == RENDER_VALUES["WorkerLayerVersionArn"]

    env, argv, keys = parse_unit(box.worker_unit)
    assert argv[1:] == ["-m", "worker", "--host", "127.0.0.1", "--port", str(box.worker_port)]
    assert env["PYTHONPATH"] == "/opt/fleet-worker"
    for key, value in {
        "User": "fleet-worker",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "KillMode": "mixed",
        "Restart": "always",
    }.items():
        assert keys[key] == [value], key

    penv, pargv, pkeys = parse_unit(box.publisher_unit)
    assert pargv[1:] == ["-m", "worker.metrics_publisher"]
    assert penv["FLEET_NAME"] == "test-fleet"
    assert penv["CPU_METRIC_NAMESPACE"] == "Autoscaler"
    assert penv["AWS_REGION"] == "eu-west-1"
    # Host demand reports: the topic and the panic line's two factors, as the stub passed them.
    assert penv["DEMAND_TOPIC_ARN"] == RENDER_VALUES["DemandTopicArn"]
    assert penv["PANIC_THRESHOLD"] == RENDER_VALUES["PanicThreshold"]
    assert penv["CPU_TARGET"] == RENDER_VALUES["CpuTarget"]
    assert pkeys["After"][0].startswith("fleet-worker.service")
    assert pkeys["ProtectSystem"] == ["strict"]

    conf = box.nginx_conf.read_text()
    assert re.search(rf"listen {box.nginx_port};", conf)
    assert f"server 127.0.0.1:{box.worker_port}" in conf


def _location(conf: str, name: str) -> str:
    match = re.search(rf"location {re.escape(name)} \{{(.*?)\}}", conf, re.DOTALL)
    assert match, name
    return match.group(1)


def _unit_config(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The worker's configuration as its unit starts it: the unit's environment, no flags but
    --host and --port (which set no timeout)."""
    env, argv, _keys = parse_unit(box.worker_unit)
    for name in ("WORKER_QUEUE_BUDGET", "WORKER_REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return config_from_args(build_parser().parse_args(argv[3:]))


def test_nginx_waits_for_the_worker_longer_than_its_budget_and_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The /work read timeout is derived from the worker's own queue budget and request timeout
    (as its unit configures them), never a second number that could fall below them."""
    box = install_sandbox(tmp_path)
    work = _location(box.nginx_conf.read_text(), "/")
    match = re.search(r"proxy_read_timeout (\d+)s;", work)
    assert match, work
    cfg = _unit_config(box, monkeypatch)
    assert int(match.group(1)) == proxy_read_timeout(cfg)
    assert int(match.group(1)) >= cfg.queue_budget + cfg.request_timeout
    assert cfg.queue_budget == float(RENDER_VALUES["WorkerQueueBudgetSeconds"])
    # A shed request is answered by the worker, once: no retry, no interception of the 503.
    assert "proxy_next_upstream off;" in work
    directives = [line.split("#", 1)[0] for line in box.nginx_conf.read_text().splitlines()]
    assert not any("proxy_intercept_errors" in line for line in directives)
    assert "proxy_read_timeout 5s;" in _location(box.nginx_conf.read_text(), "= /ping")


def test_the_templates_queue_budget_reaches_the_worker_and_nginx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WorkerQueueBudgetSeconds goes through the stub's --queue-budget into the worker's unit,
    and nginx's /work timeout follows it."""
    box = install_sandbox(tmp_path, values={**RENDER_VALUES, "WorkerQueueBudgetSeconds": "4"})
    cfg = _unit_config(box, monkeypatch)
    assert cfg.queue_budget == 4.0
    work = _location(box.nginx_conf.read_text(), "/")
    assert f"proxy_read_timeout {proxy_read_timeout(cfg)}s;" in work
    assert proxy_read_timeout(cfg) == math.ceil(2 * 4 + cfg.request_timeout)


def _publisher_args(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """The publisher's configuration as its unit starts it (the unit's environment, no flags)."""
    env, _argv, _keys = parse_unit(box.publisher_unit)
    for name in ("DEMAND_TOPIC_ARN", "PANIC_THRESHOLD", "CPU_TARGET", "FLEET_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return metrics_publisher.parse_args([])


def test_the_templates_panic_line_reaches_the_publisher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box = install_sandbox(tmp_path)
    args = _publisher_args(box, monkeypatch)
    assert args.demand_topic_arn == RENDER_VALUES["DemandTopicArn"]
    line = metrics_publisher.alert_line(args.panic_threshold, args.cpu_target)
    assert line == float(RENDER_VALUES["PanicThreshold"]) * float(RENDER_VALUES["CpuTarget"])


def test_with_reports_disabled_the_publisher_sends_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HostDemandReports Disabled: the stub passes an empty topic, the unit says so, the
    publisher has no report sink."""
    box = install_sandbox(tmp_path, values={**RENDER_VALUES, "DemandTopicArn": ""})
    assert "Environment=DEMAND_TOPIC_ARN=\n" in box.publisher_unit.read_text()
    assert _publisher_args(box, monkeypatch).demand_topic_arn == ""


def test_a_panic_line_the_publisher_rejects_fails_the_boot(tmp_path: Path) -> None:
    """A number out of the publisher's range: the boot script runs the installed publisher's own
    check with its unit's environment, fails with its message and installs no unit."""
    env = {
        **sandbox_env(tmp_path / "root", 30000, 30001),
        "BOOTSTRAP_LAYER_ZIP": str(make_worker_zip(tmp_path / "layer.zip")),
    }
    result = run_bootstrap(BOOTSTRAP, env, _with(bootstrap_args(), "--panic-threshold", "0.5"))
    assert result.returncode != 0
    assert "argument --panic-threshold: must be above 1" in result.stderr
    assert not (tmp_path / "root/etc/systemd/system/fleet-metrics.service").exists()
    assert not (tmp_path / "root/var/lib/fleet-worker/installed").exists()


def test_a_worker_that_prints_no_read_timeout_fails_the_boot(tmp_path: Path) -> None:
    env = {
        **sandbox_env(tmp_path / "root", 30000, 30001),
        "BOOTSTRAP_LAYER_ZIP": str(make_worker_zip(tmp_path / "layer.zip")),
        "BOOTSTRAP_PYTHON": "/bin/echo",  # "runs" the worker: prints its arguments
    }
    result = run_bootstrap(BOOTSTRAP, env)
    assert result.returncode != 0
    assert "the worker printed no proxy_read_timeout" in result.stderr
    assert not (tmp_path / "root/etc/nginx/conf.d/fleet-worker.conf").exists()
    assert not (tmp_path / "root/var/lib/fleet-worker/installed").exists()


def test_second_run_does_not_reinstall(tmp_path: Path) -> None:
    """user-data run again on the same host: the layer is fetched and checked again, the boot
    script sees its marker and only makes sure the services run."""
    box = install_sandbox(tmp_path)
    (box.app_dir / "worker" / "sentinel").write_text("kept")
    layer = make_worker_zip(tmp_path / "again.zip").read_bytes()
    with FakeLayerService(RENDER_VALUES["WorkerLayerVersionArn"], layer) as service:
        result = run_user_data(tmp_path / "again", service, sandbox_env(box.root, box.nginx_port, box.worker_port))
    assert result.returncode == 0, result.stderr
    assert "already installed" in result.stderr
    assert (box.app_dir / "worker" / "sentinel").read_text() == "kept"


def test_bad_layer_fails_the_boot(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("python/worker/__main__.py", "")  # wrong layout
    env = {**sandbox_env(tmp_path / "root", 30000, 30001), "BOOTSTRAP_LAYER_ZIP": str(bad)}
    result = run_bootstrap(BOOTSTRAP, env)
    assert result.returncode != 0
    assert "layer does not contain the worker package" in result.stderr
    assert not (tmp_path / "root/var/lib/fleet-worker/installed").exists()


def test_without_the_layer_zip_the_boot_fails(tmp_path: Path) -> None:
    result = run_bootstrap(BOOTSTRAP, sandbox_env(tmp_path / "root", 30000, 30001))
    assert result.returncode != 0
    assert "BOOTSTRAP_LAYER_ZIP" in result.stderr
    assert not (tmp_path / "root/var/lib/fleet-worker/installed").exists()


@pytest.mark.server
@pytest.mark.skipif(NGINX is None, reason="nginx not installed")
@pytest.mark.parametrize("layout", ["test", "al2023"])
def test_ping_answers_through_nginx(tmp_path: Path, layout: NginxLayout) -> None:
    box = install_sandbox(tmp_path)
    with (
        worker_from_unit(box, {"WORKER_PROCESSES": "1"}),
        nginx_process(tmp_path, box.nginx_conf, box.nginx_port, layout) as nginx,
    ):
        url = nginx.url
        assert http_get(f"{url}/ping") == (200, b"pong")
        status, body = http_get(f"{url}/work")
        assert status == 200
        assert b'"duration"' in body
        assert http_get(f"{url}/missing")[0] == 404
        # The worker's counters are for the local publisher only, never through the load balancer.
        assert http_get(f"{url}/stats")[0] == 404
        # The host's layout: a master and one nginx worker per vCPU (worker_processes auto).
        expected = 0 if layout == "test" else default_processes()
        assert len(child_pids(nginx.proc.pid)) == expected


@pytest.mark.server
@pytest.mark.skipif(NGINX is None, reason="nginx not installed")
def test_a_shed_request_passes_through_nginx_unchanged(tmp_path: Path) -> None:
    """Overload behind the real nginx: the worker's 503 reaches the client with its Retry-After
    and its own body, at once; the accepted requests are served."""
    box = install_sandbox(tmp_path)
    results: list[tuple[int, str | None, bytes]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(14)

    def one() -> None:
        barrier.wait()
        conn = http.client.HTTPConnection("127.0.0.1", box.nginx_port, timeout=30)
        try:
            conn.request("GET", "/work")
            response = conn.getresponse()
            with lock:
                results.append((response.status, response.getheader("Retry-After"), response.read()))
        finally:
            conn.close()

    slow = {"WORKER_PROCESSES": "1", "WORKER_WORK_MIN": "0.3", "WORKER_WORK_MAX": "0.3", "WORKER_QUEUE_BUDGET": "1.2"}
    with worker_from_unit(box, slow) as worker, nginx_process(tmp_path, box.nginx_conf, box.nginx_port):
        threads = [threading.Thread(target=one) for _ in range(14)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        stats = json.loads(http_get(f"{worker.url}/stats")[1])
    shed = [r for r in results if r[0] == 503]
    assert {r[0] for r in results} == {200, 503}, results
    assert len(shed) == stats["shed"] >= 1  # every 503 is the worker's, none is nginx's own
    for _status, retry_after, body in shed:
        assert retry_after is not None
        assert int(retry_after) >= 1
        assert json.loads(body)["retry_after"] == int(retry_after)
    assert stats["work_requests"] == 14  # nginx did not retry any of them


@pytest.mark.server
@pytest.mark.integration
def test_publisher_from_its_unit_publishes_with_instance_profile_credentials(tmp_path: Path) -> None:
    """The publisher as its unit starts it: IMDSv2 lifecycle tag and instance id, the worker's
    /stats, then PutMetricData through botocore over TLS with credentials from the instance
    profile, per fleet and per instance; and, for a burst that puts a period over the panic line
    (the template's defaults, as the unit has them), the host demand report through SNS, read
    back from an SQS subscriber: the contract's fields, the datapoint's very timestamp."""
    boto3 = pytest.importorskip("boto3")
    box = install_sandbox(tmp_path)
    cert = self_signed_cert(tmp_path / "tls")
    topic_name = RENDER_VALUES["DemandTopicArn"].rsplit(":", 1)[1]
    with (
        worker_from_unit(box, {"WORKER_PROCESSES": "1"}) as worker,
        FakeImds() as imds,
        running_moto_server(tmp_path / "moto.log", cert) as endpoint,
    ):
        clients = {"region_name": "eu-west-1", "endpoint_url": endpoint, "verify": str(cert[0]), **_FAKE_KEYS}
        cloudwatch = boto3.client("cloudwatch", **clients)
        sns, sqs = boto3.client("sns", **clients), boto3.client("sqs", **clients)
        # moto's account is the one in the unit's topic ARN: the same topic.
        assert sns.create_topic(Name=topic_name)["TopicArn"] == RENDER_VALUES["DemandTopicArn"]
        queue = sqs.create_queue(QueueName="reports")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=RENDER_VALUES["DemandTopicArn"], Protocol="sqs", Endpoint=queue_arn)
        publisher = publisher_from_unit(
            box,
            {
                # 1 s periods: the datapoint of a report is then alone in its second (moto's
                # GetMetricStatistics resolution).
                "CPU_METRIC_PERIOD_SECONDS": "1",
                "IMDS_URL": imds.url,
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
                "AWS_ENDPOINT_URL_CLOUDWATCH": endpoint,
                "AWS_ENDPOINT_URL_SNS": endpoint,
                "AWS_CA_BUNDLE": str(cert[0]),
                "AWS_CONFIG_FILE": str(tmp_path / "absent"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent"),
            },
            tmp_path / "publisher.log",
        )
        with publisher:

            def datapoints() -> int:
                stats = cloudwatch.get_metric_statistics(
                    Namespace="Autoscaler",
                    MetricName="CPUUtilization",
                    Dimensions=[{"Name": "Fleet", "Value": RENDER_VALUES["FleetName"]}],
                    StartTime=datetime.now(UTC) - timedelta(minutes=5),
                    EndTime=datetime.now(UTC) + timedelta(minutes=1),
                    Period=60,
                    Statistics=["SampleCount"],
                )
                return int(sum(p["SampleCount"] for p in stats["Datapoints"]))

            # One tick publishes the fleet's datum and the instance's; the tag is read again every tick.
            def ticks() -> int:
                return len(imds.reads(FakeImds.TAGS + "AutoscalerLifecycle"))

            log = tmp_path / "publisher.log"
            assert wait_until(lambda: datapoints() >= 2 and ticks() >= 2, timeout=30), log.read_text()
            assert imds.reads(FakeImds.CREDENTIALS + FakeImds.ROLE)  # credentials from the instance profile
            # Idle periods are far below the line: nothing reported.
            assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages") is None

            # A burst of 10 /work at once on one process (0.5 s each, within the 10 s budget):
            # however the 1 s periods cut it, one of them is offered >= 250 %, over 2 x 80.
            burst = [threading.Thread(target=http_get, args=(f"{worker.url}/work", 30.0)) for _ in range(10)]
            for thread in burst:
                thread.start()
            received: list[dict[str, Any]] = []

            def reported() -> bool:
                received.extend(sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []))
                return bool(received)

            assert wait_until(reported, timeout=30, interval=0.5), log.read_text()
            for thread in burst:
                thread.join(30)
            envelope = json.loads(received[0]["Body"])
            report = json.loads(envelope["Message"])
            # The CloudWatch datapoints of that period's second, for this instance.
            at = datetime.strptime(report["Timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            (same_second,) = cloudwatch.get_metric_statistics(
                Namespace="Autoscaler",
                MetricName="OfferedLoad",
                Dimensions=[
                    {"Name": "Fleet", "Value": RENDER_VALUES["FleetName"]},
                    {"Name": "InstanceId", "Value": FakeImds.INSTANCE_ID},
                ],
                StartTime=at.replace(microsecond=0),
                EndTime=at.replace(microsecond=0) + timedelta(seconds=1),
                Period=1,
                Statistics=["Minimum", "Maximum", "SampleCount"],
            )["Datapoints"]

    assert envelope["MessageAttributes"] == {"Fleet": {"Type": "String", "Value": RENDER_VALUES["FleetName"]}}
    assert set(report) == {
        "AutoscalerHostDemand", "Fleet", "InstanceId", "Timestamp", "PeriodSeconds", "Namespace", "Metrics"
    }  # fmt: skip
    assert (report["AutoscalerHostDemand"], report["Fleet"], report["InstanceId"], report["Namespace"]) == (
        1,
        RENDER_VALUES["FleetName"],
        FakeImds.INSTANCE_ID,
        "Autoscaler",
    )
    assert list(report["Metrics"]) == [
        "CPUUtilization", "RequestsPerMinute", "OfferedLoad", "BacklogSeconds", "ShedRequests"
    ]  # fmt: skip
    line = float(RENDER_VALUES["PanicThreshold"]) * float(RENDER_VALUES["CpuTarget"])
    assert report["Metrics"]["OfferedLoad"] >= line
    assert report["PeriodSeconds"] == pytest.approx(1.0, abs=0.5)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", report["Timestamp"])
    # The report's period was put to CloudWatch too, at that instant (alone in its second unless
    # the 1 s schedule jittered two ticks into it).
    assert same_second["SampleCount"] in (1.0, 2.0)
    assert report["Metrics"]["OfferedLoad"] in (same_second["Minimum"], same_second["Maximum"])
