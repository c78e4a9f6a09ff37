"""How fast is the twin? One nine-stage run, a 50-run envelope, and a 24-hour day.

Prints wall-clock seconds and simulated seconds per wall second; asserts nothing (the machines are
shared and noisy). The targets it is read against: one nine-stage run within 10 s, a 50-run
envelope within 5 minutes, the 24-hour diurnal scenario at 500 x real time or more.

    .venv/bin/python -m benchmarks.twin [--runs 50] [--repeat 3] [--skip-diurnal]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from simulator.cli import environment, run_scenario
from simulator.scenario import load_scenario
from simulator.sweep import sweep

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = str(ROOT / "template.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="runs of the envelope")
    parser.add_argument("--repeat", type=int, default=3, help="single nine-stage runs to time")
    parser.add_argument("--skip-diurnal", action="store_true")
    args = parser.parse_args()
    environment()
    nine = load_scenario(ROOT / "scenarios" / "nine-stage.yaml")
    print(f"machine: {os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        walls, speeds = [], []
        for k in range(args.repeat):
            report = run_scenario(nine, TEMPLATE, {}, "ours", Path(tmp) / f"nine-{k}", quiet=True)
            walls.append(report["speed"]["wall_seconds"])
            speeds.append(report["speed"]["simulated_per_wall_second"])
        print(f"nine-stage, one run: {statistics.median(walls):.1f} s wall (min {min(walls):.1f}, max "
              f"{max(walls):.1f}; {statistics.median(speeds):.0f} x real time) - target <= 10 s")  # fmt: skip

        started = time.perf_counter()
        doc = sweep(nine, TEMPLATE, {}, "ours", args.runs)
        elapsed = time.perf_counter() - started
        s = doc["summary"]
        print(f"nine-stage envelope, {args.runs} runs on {os.cpu_count()} processes: {elapsed:.0f} s wall "
              f"({elapsed / args.runs:.1f} s per run; {s['passed']}/{s['runs']} passed) - target <= 300 s")  # fmt: skip

        if not args.skip_diurnal:
            diurnal = load_scenario(ROOT / "scenarios" / "diurnal.yaml")
            report = run_scenario(diurnal, TEMPLATE, {}, "ours", Path(tmp) / "diurnal", quiet=True)
            speed = report["speed"]
            print(f"diurnal, 24 h: {speed['wall_seconds']:.0f} s wall, {speed['simulated_per_wall_second']:.0f} x "
                  f"real time ({report['totals']['requests']} requests) - target >= 500 x")  # fmt: skip
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
