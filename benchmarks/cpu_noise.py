"""How noisy is the fleet CPU a decision reads? (the figures behind docs/tuning.md)

N closed-loop clients (1 s think time, 0.45-0.55 s of work) on one vCPU, in the twin's own
processor-sharing model (simulator/traffic.py): mean utilisation and the spread of its average
over 10, 30 and 60 s windows, the windows the alarms and the decisions use.

Run: ``.venv/bin/python benchmarks/cpu_noise.py`` (a few seconds).
"""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from simulator.traffic import TrafficEngine  # noqa: E402

HORIZON_SECONDS = 20_000
WARMUP_SECONDS = 100
WINDOWS = (10, 30, 60)


def utilisation_samples(clients: int, seed: int = 1) -> list[float]:
    """CPU % of one vCPU for every 10 s of the run, after a warm-up."""
    engine = TrafficEngine(random.Random(seed))
    worker = engine.add_worker("i-1", 1)
    worker.up = True
    engine.set_routable(0.0, ["i-1"])
    engine.set_clients(0.0, clients, 1.0)
    samples, previous = [], 0.0
    for end in range(10, HORIZON_SECONDS + 1, 10):
        engine.advance_to(float(end))
        busy = worker.cpu_seconds(float(end))
        if end > WARMUP_SECONDS:
            samples.append((busy - previous) / 10 * 100)
        previous = busy
    return samples


def main() -> None:
    print(f"{'clients':>7}  {'mean %':>6}  " + "  ".join(f"sd over {w:>2} s" for w in WINDOWS))
    for clients in (1, 2, 3, 4):
        tens = utilisation_samples(clients)
        spreads = []
        for window in WINDOWS:
            k = window // 10
            means = [statistics.fmean(tens[i : i + k]) for i in range(0, len(tens) - k + 1, k)]
            spreads.append(statistics.stdev(means))
        print(f"{clients:>7}  {statistics.fmean(tens):>6.1f}  " + "  ".join(f"{sd:>12.1f}" for sd in spreads))


if __name__ == "__main__":
    main()
