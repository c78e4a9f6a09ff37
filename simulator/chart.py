"""The timeline chart: load, instances, fleet CPU vs thresholds, alarm states, p95 latency, stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from simulator.harness import RunResult

STATE_LEVEL = {"OK": 0, "INSUFFICIENT_DATA": 0.5, "ALARM": 1}


def _p95_per_minute(result: RunResult) -> tuple[np.ndarray, np.ndarray]:
    sent = np.frombuffer(result.log.sent, dtype=np.float64) - result.start
    latency = np.frombuffer(result.log.latency, dtype=np.float64)
    keep = (np.frombuffer(result.log.status, dtype=np.int16) == 200) & (sent >= 0)
    sent, latency = sent[keep], latency[keep]
    if sent.size == 0:
        return np.array([]), np.array([])
    minutes = (sent // 60).astype(np.int64)
    order = np.argsort(minutes, kind="stable")
    minutes, latency = minutes[order], latency[order]
    edges = np.flatnonzero(np.diff(minutes)) + 1
    xs, ys = [], []
    for chunk_m, chunk_l in zip(np.split(minutes, edges), np.split(latency, edges), strict=True):
        xs.append(chunk_m[0] * 60 + 30)
        ys.append(float(np.percentile(chunk_l, 95)))
    return np.array(xs), np.array(ys)


def draw_timeline(result: RunResult, report: dict[str, Any], path: str | Path) -> None:
    samples = [s for s in result.samples if s.t >= 0]
    hours = result.scenario.duration > 4 * 3600
    scale = 3600.0 if hours else 60.0
    unit = "h" if hours else "min"
    t = np.array([s.t for s in samples]) / scale
    fig, axes = plt.subplots(5, 1, sharex=True, figsize=(13, 12), height_ratios=[1.2, 1.4, 1.4, 1.0, 1.2])
    status = "PASSED" if report["passed"] else "FAILED"
    fig.suptitle(
        f"{report['scenario']} - policy {report['policy']} - {status}",
        color="tab:green" if report["passed"] else "tab:red",
        fontsize=14,
        fontweight="bold",
    )
    ax_load, ax_inst, ax_cpu, ax_alarm, ax_lat = axes

    ax_load.step(t, [s.load for s in samples], where="post", color="tab:blue")
    closed = any(st.clients is not None for st in result.scenario.stages)
    ax_load.set_ylabel("clients" if closed else "requests/s")
    ax_load.set_title("load", loc="left", fontsize=9)

    ax_inst.stackplot(
        t,
        [s.in_service for s in samples],
        [s.booting for s in samples],
        [s.pool for s in samples],
        [s.warming for s in samples],
        labels=["in service", "booting", "pool (stopped)", "warming"],
        colors=["tab:green", "tab:orange", "tab:gray", "khaki"],
        step="post",
        alpha=0.8,
    )
    if result.deploys:
        # Of the in-service and pool bands, the part that runs the latest deployed version.
        in_service = np.array([s.in_service for s in samples])
        pool_base = in_service + np.array([s.booting for s in samples])
        ax_inst.fill_between(t, 0, [s.new_in_service for s in samples], step="post", facecolor="none",
                             edgecolor="black", hatch="//", linewidth=0, label="of them: deployed version")  # fmt: skip
        ax_inst.fill_between(t, pool_base, pool_base + np.array([s.new_pool for s in samples]), step="post",
                             facecolor="none", edgecolor="black", hatch="//", linewidth=0)  # fmt: skip
        for deploy in result.deploys:
            ax_inst.axvline(deploy.at / scale, color="tab:purple", linestyle="-.", linewidth=1.2)
            ax_inst.text(deploy.at / scale, 0.05, f" deploy v{deploy.version}", color="tab:purple", fontsize=8,
                         rotation=90, va="bottom")  # fmt: skip
    for stage in report["stages"]:
        start, end = stage["start"] / scale, (stage["start"] + stage["duration"]) / scale
        expected = stage["expect_instances"]
        if expected is not None:
            low, high = (expected, expected) if isinstance(expected, int) else expected
            color = "tab:green" if stage["passed"] else "tab:red"
            ax_inst.hlines([low, high], start, end, colors="black", linestyles="dashed", linewidth=1.2)
            ax_inst.text(
                (start + end) / 2, high + 0.15, f"S{stage['index']}: {'ok' if stage['passed'] else 'FAIL'}",
                ha="center", va="bottom", fontsize=8, color=color, fontweight="bold",
            )  # fmt: skip
        for ax in axes:
            ax.axvline(start, color="black", alpha=0.25, linewidth=0.8)
            if not stage["passed"]:
                ax.axvspan(start, end, color="tab:red", alpha=0.06)
    ax_inst.set_ylabel("instances")
    ax_inst.legend(loc="upper left", fontsize=8, ncol=5)
    title = "instances (dashed: expected per stage" + ("; hatched: the deployed version)" if result.deploys else ")")
    ax_inst.set_title(title, loc="left", fontsize=9)

    cpu_t = [s.t / scale for s in samples if s.cpu is not None]
    ax_cpu.plot(cpu_t, [s.cpu for s in samples if s.cpu is not None], color="tab:purple", linewidth=0.8)
    for i, (name, threshold) in enumerate(sorted(result.thresholds.items())):
        ax_cpu.axhline(threshold, color=f"C{i + 3}", linestyle=":", label=f"{name} {threshold:g}%")
    ax_cpu.set_ylim(0, 105)
    ax_cpu.set_ylabel("fleet CPU %")
    if result.thresholds:
        ax_cpu.legend(loc="upper left", fontsize=8)
    ax_cpu.set_title("fleet CPU (10 s datapoints, average of in-service hosts)", loc="left", fontsize=9)

    names = sorted({n for s in samples for n in s.alarms})
    for i, name in enumerate(names):
        levels = np.array([STATE_LEVEL.get(s.alarms.get(name, "OK"), 0) for s in samples])
        ax_alarm.fill_between(t, i, i + 0.8 * levels, step="post", color="tab:red", alpha=0.7)
        ax_alarm.plot(t, np.full_like(t, i), color="black", linewidth=0.4)
    ax_alarm.set_yticks([i + 0.4 for i in range(len(names))], names, fontsize=7)
    ax_alarm.set_title("alarm states (filled = ALARM, half = INSUFFICIENT_DATA)", loc="left", fontsize=9)
    for action in report["actions"]:
        ax_alarm.axvline(
            action["t"] / scale, color="tab:green" if action["direction"] == "out" else "tab:blue", linewidth=1.5
        )

    xs, ys = _p95_per_minute(result)
    ax_lat.plot(xs / scale, ys, color="tab:brown", marker=".", markersize=3, linewidth=0.8)
    ax_lat.axhline(1.2, color="tab:red", linestyle=":", label="SLO 1.2 s")
    ax_lat.set_ylabel("p95 latency s")
    ax_lat.legend(loc="upper left", fontsize=8)
    ax_lat.set_title("p95 latency per minute", loc="left", fontsize=9)
    ax_lat.set_xlabel(f"scenario time ({unit})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
