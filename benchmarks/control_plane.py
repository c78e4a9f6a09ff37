"""Control-plane figures (a benchmark that prints, not a test that times).

1. AWS API calls per scaling decision at fleet sizes 2, 20 and 200, counted with botocore
   event hooks: a scale-out by one through the alarm entry point, and a converged reconcile.
2. Cold import time of each handler module as a ratio to ``import boto3`` alone, measured in
   the same run (fresh interpreters, median of several), and what the first invocation adds
   by building the pydantic Settings model (lambda_runtime builds it then, not at import).
3. Wall time of a 1 -> 2 scale-out against moto (median of several).

Run from the repository's root (it uses the tests' fake fleet): ``.venv/bin/python -m benchmarks.control_plane``
(about a minute).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
warnings.filterwarnings("ignore", message="Couldn't determine the remaining time left")

import tests.conftest  # noqa: E402,F401 - fake credentials and the small moto AMI catalogue
from tests.support.aws import REGISTRATION_SECONDS, build_fleet  # noqa: E402
from tests.support.events import alarm_event  # noqa: E402

IMPORT_RUNS = 7
SCALE_RUNS = 5
HANDLERS = ("handlers.scale_out", "handlers.scale_in", "handlers.reconcile", "handlers.lifecycle")


def _count_calls(fleet: Any) -> Counter[str]:
    counter: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counter[f"{model.service_model.service_name}:{model.name}"] += 1

    clients = fleet.runtime.clients
    for client in (clients.ec2, clients.elbv2, clients.cloudwatch, clients.dynamodb):
        client.meta.events.register("before-call.*.*", count)
    return counter


def api_calls(size: int) -> tuple[Counter[str], Counter[str]]:
    from autoscaler import entrypoints
    from autoscaler.model import Direction
    from moto import mock_aws

    with mock_aws():
        fleet = build_fleet(max_size=2 * size + 10, warm_pool_size=1)
        entrypoints.set_capacity(fleet.runtime, size)
        fleet.mark_ready()
        entrypoints.reconcile(fleet.runtime)
        # 15 % over target (outside the tolerance band): ceil(1.15 x size) instances. The action grows
        # with the size, the number of calls must not (one call per AZ or subnet, not per instance).
        fleet.knobs.cpu = fleet.runtime.settings.target("cpu") * 1.15
        fleet.knobs.requests = None
        fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"  # a notification acts only while its alarm is in ALARM
        fleet.clock.advance(60)
        counter = _count_calls(fleet)
        result = entrypoints.handle_alarm_event(
            alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT
        )
        (outcome,) = result["results"]
        assert outcome["desired"] == math.ceil(size * 1.15 - 1e-9), outcome
        scale_out = Counter(counter)
        counter.clear()
        fleet.mark_ready()
        fleet.knobs.cpu = 60.0
        fleet.clock.advance(60)
        entrypoints.reconcile(fleet.runtime)
        counter.clear()
        fleet.clock.advance(60)
        entrypoints.reconcile(fleet.runtime)
        return scale_out, Counter(counter)


def import_seconds(statement: str) -> float:
    from tests.support.template_settings import template_environment

    # The template's environment, as a deployed function has it (Settings.from_env reads it).
    env = {
        **os.environ,
        **template_environment(),
        "PYTHONPATH": f"{ROOT / 'functions'}",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    samples = []
    for _ in range(IMPORT_RUNS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def scale_out_wall_time() -> float:
    from autoscaler import entrypoints
    from autoscaler.model import Direction
    from moto import mock_aws

    samples = []
    for _ in range(SCALE_RUNS):
        with mock_aws():
            fleet = build_fleet()
            entrypoints.create_fleet(fleet.runtime)
            fleet.mark_ready()
            entrypoints.reconcile(fleet.runtime)
            fleet.clock.advance(REGISTRATION_SECONDS)  # its first health check passes: in service
            fleet.knobs.cpu = fleet.runtime.settings.target("cpu") * 1.13  # one instance wants two
            fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
            event = alarm_event("fleet-cpu-high", fleet.clock.now())
            start = time.perf_counter()
            (outcome,) = entrypoints.handle_alarm_event(event, fleet.runtime, Direction.OUT)["results"]
            assert outcome["reason"] == "scale-out", outcome
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    print("== AWS API calls per decision (scale-out by 15 % through the alarm entry point) ==")
    rows = []
    for size in (2, 20, 200):
        scale_out, reconcile = api_calls(size)
        rows.append((size, sum(scale_out.values()), sum(reconcile.values()), scale_out))
        print(
            f"fleet {size:>3}: scale-out {sum(scale_out.values()):>2} calls, converged reconcile "
            f"{sum(reconcile.values()):>2} calls"
        )
    print("scale-out calls at 200:", ", ".join(f"{k} x{v}" for k, v in sorted(rows[-1][3].items())))

    print(f"\n== Cold import time (fresh interpreter, median of {IMPORT_RUNS}) ==")
    python_only = import_seconds("pass")
    boto3_only = import_seconds("import boto3") - python_only
    print(f"import boto3 alone: {boto3_only:.3f} s (interpreter start {python_only:.3f} s subtracted)")
    seconds: dict[str, float] = {}
    for module in HANDLERS:
        handler = seconds[module] = import_seconds(f"import boto3, {module}") - python_only
        print(f"boto3 + {module:<20} {handler:.3f} s  ratio {handler / boto3_only:.2f}x (target <= 1.5x)")
    # The first invocation builds the settings model (lambda_runtime): pydantic's import and the
    # model's validation are a cold-start cost too, paid once per execution environment.
    first = "from autoscaler.settings import Settings\nSettings.from_env()"
    with_settings = import_seconds(f"import boto3, {HANDLERS[2]}\n{first}") - python_only
    added = with_settings - seconds[HANDLERS[2]]
    print(f"boto3 + {HANDLERS[2]} + its first Settings.from_env {with_settings:.3f} s  ratio "
          f"{with_settings / boto3_only:.2f}x (+{added:.3f} s once per cold start)")  # fmt: skip
    # The alarm functions parse their events with pydantic models anyway (autoscaler.intake).
    events = import_seconds(f"import boto3, {HANDLERS[0]}\nimport autoscaler.intake") - python_only
    both = import_seconds(f"import boto3, {HANDLERS[0]}\nimport autoscaler.intake\n{first}") - python_only
    print(f"boto3 + {HANDLERS[0]} + its event models {events:.3f} s, + Settings {both:.3f} s  ratio "
          f"{both / boto3_only:.2f}x (+{both - events:.3f} s for Settings, pydantic loaded anyway)")  # fmt: skip

    print(f"\n== Wall time of a 1 -> 2 scale-out against moto (median of {SCALE_RUNS}) ==")
    print(f"{scale_out_wall_time() * 1000:.0f} ms (alarm event in, pool instance started and registered)")


if __name__ == "__main__":
    main()
