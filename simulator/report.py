"""The run's verdict: per-stage figures, totals, the oracle, the report.json document and table."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
from autoscaler.plan import pool_seats

from simulator.harness import RunResult
from simulator.oracle import STEP_SECONDS, Need, step_starts
from simulator.refresh import deploy_checks, deploy_lines, refresh_figures
from simulator.scenario import Stage
from simulator.traffic import GATEWAY_TIMEOUT, UNAVAILABLE

SLO_SECONDS = 1.2
REPORT_VERSION = 2


def count_at(timeline: list[tuple[float, int]], t: float) -> int | None:
    """Instances in service at scenario time ``t`` (the last change at or before it)."""
    count = None
    for at, n in timeline:
        if at > t:
            break
        count = n
    return count


def seconds_to(timeline: list[tuple[float, int]], start: float, end: float, low: int, high: int) -> float | None:
    """From ``start`` to the first moment before ``end`` the count is within [low, high]."""
    at_start = count_at(timeline, start)
    if at_start is not None and low <= at_start <= high:
        return 0.0
    for at, n in timeline:
        if start < at < end and low <= n <= high:
            return round(at - start, 1)
    return None


def peak_instances(timeline: list[tuple[float, int]], end: float) -> int | None:
    """The most instances in service at any moment of the scenario (time 0 to ``end``)."""
    counts = [n for at, n in timeline if 0.0 < at <= end]
    at_start = count_at(timeline, 0.0)
    if at_start is not None:
        counts.append(at_start)
    return max(counts) if counts else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 5) if whole else None


def _percentiles(latencies: np.ndarray) -> tuple[float | None, float | None, float | None]:
    if latencies.size == 0:
        return None, None, None
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99], method="inverted_cdf")
    return round(float(p50), 4), round(float(p95), 4), round(float(p99), 4)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def deploy_figures(result: RunResult, sent: np.ndarray, status: np.ndarray,
                   baseline_instance_seconds: float | None) -> list[dict[str, Any]]:  # fmt: skip
    """Each deploy's refresh (``refresh.py``); the extra instance-seconds against the same run
    without its deploys when that run was made and there is one deploy to charge them to."""
    figures = []
    ends = [d.at for d in result.deploys[1:]] + [result.scenario.duration] * bool(result.deploys)
    warm, prepared = int(result.settings.get("warm_pool_size", 0)), int(result.settings.get("max_prepared_capacity", 0))

    def seats(desired: int) -> int:
        return pool_seats(warm, prepared, desired)

    for deploy, until in zip(result.deploys, ends, strict=True):
        figure = refresh_figures(deploy, result.fleet, until, sent, status, seats)
        # The Fleet resource's answer to the deploy's Update (FAILED would roll the stack back).
        answer = next((r for r in result.responses if r.request_type == "Update" and r.t >= deploy.at), None)
        figure["update_response"] = None if answer is None else {"t": round(answer.t, 1), "status": answer.status,
                                                                  "reason": answer.reason}  # fmt: skip
        figures.append(figure)
    if baseline_instance_seconds is not None and len(figures) == 1:
        figures[0]["extra_instance_seconds"] = round(result.instance_seconds - baseline_instance_seconds, 1)
    return figures


def build_report(result: RunResult, baseline_instance_seconds: float | None = None) -> dict[str, Any]:
    """The run's report; ``baseline_instance_seconds``: what the same scenario and seed billed
    without its deploy events (``harness.without_deploys``), for a deploy's extra cost."""
    scenario = result.scenario
    sent = np.frombuffer(result.log.sent, dtype=np.float64) - result.start
    latency = np.frombuffer(result.log.latency, dtype=np.float64)
    status = np.frombuffer(result.log.status, dtype=np.int16)
    ok = status == 200
    # Shed at once (a worker over its queue budget or with a full queue; no target at all) and
    # given up on by the load balancer: the two ways a burst fails, counted apart.
    shed = status == UNAVAILABLE
    timed_out = status == GATEWAY_TIMEOUT
    expect = scenario.expect
    grace = expect.latency_grace_seconds
    p95_limit = expect.latency_p95_max
    stages = []
    previous_load = 0.0
    settings = result.settings
    min_size = int(settings["min_size"])
    cpu_target = float(settings["targets"]["CPU_TARGET"])
    oracle_seconds = 0.0
    oracle_prev = min_size
    need = Need(result.params, result.vcpus, cpu_target, min_size)
    peak_need = min_size
    p = result.params
    boot = p.start_pending_seconds.mid + p.boot_seconds.mid + p.worker_start_seconds.mid
    for stage in scenario.stages:
        in_stage = (sent >= stage.start) & (sent < stage.end)
        lat = latency[in_stage & ok]
        errors = int(np.count_nonzero(in_stage & ~ok))
        shed_in_stage = int(np.count_nonzero(in_stage & shed))
        timeouts = int(np.count_nonzero(in_stage & timed_out))
        p50, p95, p99 = _percentiles(lat)
        increased = stage.load > previous_load
        settled_from = stage.start + (grace if increased else 0.0)
        settled = latency[(sent >= settled_from) & (sent < stage.end) & ok]
        _, p95_settled, _ = _percentiles(settled)
        previous_load = stage.load
        at_end = count_at(result.timeline, stage.end)
        seconds_to_expected = None
        if stage.expect_instances is not None:
            low, high = stage.expect_instances
            seconds_to_expected = seconds_to(result.timeline, stage.start, stage.end, low, high)
        checks = _stage_checks(stage, at_end, seconds_to_expected, p95_settled, p95_limit)
        # Oracle: instances matching need, integrated over the stage (10 s steps), boot time ahead.
        for t in step_starts(stage):
            step_need = need.at(stage, t)
            if step_need > oracle_prev:
                oracle_seconds += (step_need - oracle_prev) * boot
            oracle_prev = step_need
            oracle_seconds += step_need * min(STEP_SECONDS, stage.end - t)
        stage_need = need.stage_peak(stage)
        peak_need = max(peak_need, stage_need)
        # Time to sufficient capacity: the same count rule against the oracle's need, no ceiling.
        seconds_to_need = seconds_to(result.timeline, stage.start, stage.end, stage_need, sys.maxsize)
        stages.append(
            {
                "index": stage.index,
                "name": stage.name,
                "start": stage.start,
                "duration": stage.duration,
                "clients": stage.clients,
                "rate": stage.rate,
                "rate_end": stage.rate_end,
                "expect_instances": None if stage.expect_instances is None else _expect_json(stage.expect_instances),
                "expect_within": stage.expect_within,
                "instances_at_end": at_end,
                "seconds_to_expected": seconds_to_expected,
                "requests": int(np.count_nonzero(in_stage)),
                "errors": errors,
                "error_ratio": _ratio(errors, int(np.count_nonzero(in_stage))),
                "need": stage_need,
                "seconds_to_need": seconds_to_need,
                "shed": shed_in_stage,
                "timeouts": timeouts,
                "latency_p50": p50,
                "latency_p95": p95,
                "latency_p99": p99,
                "latency_p95_settled": p95_settled,
                "passed": all(c["passed"] for c in checks),
                "checks": checks,
            }
        )

    total = int(sent.size)
    errors_total = int(np.count_nonzero(~ok))
    good = int(np.count_nonzero(ok & (latency <= SLO_SECONDS)))
    outs = [a for a in result.actions if a.direction == "out"]
    ins = [a for a in result.actions if a.direction == "in"]
    window = expect.flap_window_seconds
    flaps = sum(
        1
        for a, b in zip(result.actions, result.actions[1:], strict=False)
        if a.direction != b.direction and b.t - a.t <= window
    )
    totals = {
        "requests": total,
        "errors": errors_total,
        "shed": int(np.count_nonzero(shed)),
        "timeouts": int(np.count_nonzero(timed_out)),
        "slo_seconds": SLO_SECONDS,
        "error_ratio": _ratio(errors_total, total),
        "slo_attainment": round(good / total, 4) if total else None,
        "instance_seconds": round(result.instance_seconds, 1),
        "oracle_instance_seconds": round(oracle_seconds, 1),
        "instance_seconds_vs_oracle": round(result.instance_seconds / oracle_seconds, 3) if oracle_seconds else None,
        "scale_out_actions": len(outs),
        "scale_in_actions": len(ins),
        "flaps": flaps,
        "flap_window_seconds": window,
        "function_errors": sum(1 for i in result.invocations if not i["ok"]),
        "peak_instances": peak_instances(result.timeline, scenario.duration),
        "peak_need": peak_need,
    }
    deploys = deploy_figures(result, sent, status, baseline_instance_seconds)
    if baseline_instance_seconds is not None:
        totals["instance_seconds_without_deploys"] = round(baseline_instance_seconds, 1)
    global_checks = _global_checks(totals, expect) + deploy_checks(deploys, expect)
    passed = all(s["passed"] for s in stages) and all(c["passed"] for c in global_checks)
    simulated = scenario.duration + result.start
    return {
        "version": REPORT_VERSION,
        "scenario": scenario.name,
        "scenario_file": scenario.path,
        "seed": scenario.seed,
        "policy": result.policy,
        "paired_draws": scenario.paired_draws,
        "passed": passed,
        "stages": stages,
        "totals": totals,
        "checks": global_checks,
        "deploys": deploys,
        "actions": [
            {"t": round(a.t, 1), "direction": a.direction, "from": a.before, "to": a.after} for a in result.actions
        ],
        "alarm_transitions": [
            {"t": round(at, 1), "alarm": name, "from": old, "to": new} for name, old, new, at in result.alarm_history
        ],
        "invocations": _invocation_summary(result.invocations),
        "parameters": {k: _jsonable(v) for k, v in result.deployment.parameters.items()},
        "settings": settings,
        "model": result.params.to_json(),
        "phases": {
            "start": round(result.phases.start, 3),
            "schedule": round(result.phases.schedule, 3),
            "alarms": {k: round(v, 3) for k, v in result.phases.alarms.items()},
        },
        "speed": {
            "simulated_seconds": simulated,
            "wall_seconds": round(result.wall_seconds, 2),
            "simulated_per_wall_second": round(simulated / result.wall_seconds, 1) if result.wall_seconds else None,
        },
    }


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def _expect_json(expect: tuple[int, int]) -> int | list[int]:
    return expect[0] if expect[0] == expect[1] else [expect[0], expect[1]]


def _stage_checks(
    stage: Stage, at_end: int | None, seconds_to: float | None, p95_settled: float | None, p95_limit: float | None
) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    if stage.expect_instances is not None:
        low, high = stage.expect_instances
        checks.append(
            {"check": "instances_at_end", "expected": _expect_json(stage.expect_instances), "actual": at_end,
             "passed": at_end is not None and low <= at_end <= high}
        )  # fmt: skip
    if stage.expect_within is not None:
        checks.append(
            {"check": "seconds_to_expected", "expected": f"<= {stage.expect_within:g}", "actual": seconds_to,
             "passed": seconds_to is not None and seconds_to <= stage.expect_within}
        )  # fmt: skip
    if p95_limit is not None:
        checks.append(
            {"check": "latency_p95_settled", "expected": f"<= {p95_limit:g}", "actual": p95_settled,
             "passed": p95_settled is None or p95_settled <= p95_limit}
        )  # fmt: skip
    return checks


def _global_checks(totals: dict[str, Any], expect: Any) -> list[dict[str, Any]]:
    checks = []
    for key, total_key in (("scale_out_actions", "scale_out_actions"), ("scale_in_actions", "scale_in_actions")):
        wanted = getattr(expect, key)
        if wanted is not None:
            checks.append({"check": key, "expected": wanted, "actual": totals[total_key],
                           "passed": totals[total_key] == wanted})  # fmt: skip
    if expect.max_flaps is not None:
        checks.append({"check": "flaps", "expected": f"<= {expect.max_flaps}", "actual": totals["flaps"],
                       "passed": totals["flaps"] <= expect.max_flaps})  # fmt: skip
    return checks


def _invocation_summary(invocations: list[dict[str, Any]]) -> dict[str, Any]:
    by_function: dict[str, dict[str, int]] = {}
    for i in invocations:
        entry = by_function.setdefault(i["function"], {"count": 0, "cold": 0, "errors": 0})
        entry["count"] += 1
        entry["cold"] += int(i["cold"])
        entry["errors"] += int(not i["ok"])
    errors = [i for i in invocations if not i["ok"]][:20]
    return {"by_function": by_function, "first_errors": errors}


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return f"{value[0]}-{value[1]}"
    return str(value)


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100 * ratio:.1f}"


def stage_table(report: dict[str, Any]) -> str:
    header = ("stage", "load", "expect", "at end", "t->exp s", "need", "t->need s", "requests", "errors", "503",
              "504", "err %", "p50 s", "p95 s", "p95* s", "ok")  # fmt: skip
    rows = [header]
    for s in report["stages"]:
        load = f"{s['clients']} cl" if s["clients"] is not None else f"{s['rate']:g}/s"
        if s["clients"] is None and s["rate_end"] is not None and s["rate_end"] != s["rate"]:
            load = f"{s['rate']:g}->{s['rate_end']:g}/s"
        rows.append(
            (
                str(s["index"]), load, _fmt(s["expect_instances"]), _fmt(s["instances_at_end"]),
                _fmt(s["seconds_to_expected"], 0), str(s["need"]), _fmt(s["seconds_to_need"], 0),
                str(s["requests"]), str(s["errors"]), str(s["shed"]), str(s["timeouts"]), _percent(s["error_ratio"]),
                _fmt(s["latency_p50"]), _fmt(s["latency_p95"]), _fmt(s["latency_p95_settled"]),
                "PASS" if s["passed"] else "FAIL",
            )
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    t = report["totals"]
    sp = report["speed"]
    lines.append("")
    lines.append(
        f"scale-out actions {t['scale_out_actions']}, scale-in actions {t['scale_in_actions']}, flaps {t['flaps']}; "
        f"requests {t['requests']}, errors {t['errors']} (503 shed {t['shed']}, 504 timed out {t['timeouts']}), "
        f"SLO (<= {t['slo_seconds']} s) {_fmt(t['slo_attainment'], 4)}"
    )
    lines.append(
        f"instance-seconds {t['instance_seconds']:.0f} (oracle {t['oracle_instance_seconds']:.0f}, "
        f"x{_fmt(t['instance_seconds_vs_oracle'])}); peak in service {_fmt(t['peak_instances'])} "
        f"(need {t['peak_need']}); function errors {t['function_errors']}"
    )
    lines.extend(deploy_lines(report.get("deploys") or []))
    for c in report["checks"]:
        lines.append(f"check {c['check']}: expected {c['expected']}, actual {c['actual']} -> "
                     f"{'PASS' if c['passed'] else 'FAIL'}")  # fmt: skip
    lines.append(
        f"{report['scenario']} [{report['policy']}]: {'PASSED' if report['passed'] else 'FAILED'} - "
        f"{sp['simulated_seconds']:.0f} simulated s in {sp['wall_seconds']:.1f} wall s "
        f"({_fmt(sp['simulated_per_wall_second'], 0)} x real time)"
    )
    lines.append(
        "p95* = p95 excluding the first 120 s after a load increase; need = the oracle's instances at the "
        "CPU target (the stage's peak), t->need = from the stage start until that many are in service"
    )
    return "\n".join(lines)
