"""How noisy is the fleet CPU a decision reads? (the figures behind docs/tuning.md)

N closed-loop clients (1 s think time) on one one-vCPU host of the twin's worker model (the
worker as built: one process per vCPU, FIFO; /work 0.45-0.55 s plus the per-request overhead and
background CPU measured by ``python -m benchmarks.worker --calibrate``): the mean CPU the host reports and
the spread of its average over 10, 30 and 60 s windows, the windows the alarms and the decisions use,
and the requests per minute the host serves (what the hosts publish as RequestsPerMinute).

Run: ``.venv/bin/python -m benchmarks.cpu_noise`` (a few seconds).
"""

from __future__ import annotations

import random
import statistics

from simulator.params import ModelParams
from simulator.traffic import TrafficEngine

HORIZON_SECONDS = 20_000
WARMUP_SECONDS = 100
WINDOWS = (10, 30, 60)


def utilisation_samples(clients: int, seed: int = 1, params: ModelParams | None = None) -> tuple[list[float], float]:
    """CPU % the host reports for every 10 s of the run, after a warm-up, and the requests it
    received per minute over the same time."""
    p = params or ModelParams()
    engine = TrafficEngine(random.Random(seed), p.work_seconds.sample, p.request_overhead_ms / 1000.0)
    host = engine.add_host("i-1", 1, p.background_cpu_percent / 100.0)
    host.up = True
    engine.set_routable(0.0, ["i-1"])
    engine.set_clients(0.0, clients, 1.0)
    samples, previous = [], 0.0
    for end in range(10, HORIZON_SECONDS + 1, 10):
        busy = engine.busy_seconds(float(end), "i-1")
        if end > WARMUP_SECONDS:
            samples.append(host.cpu_percent(busy - previous, 10.0, 1))
        previous = busy
    minutes = [n for minute, n in engine.log.per_minute.items() if minute * 60 >= WARMUP_SECONDS]
    return samples, statistics.fmean(minutes)


def main() -> None:
    print(f"{'clients':>7}  {'mean %':>6}  " + "  ".join(f"sd over {w:>2} s" for w in WINDOWS) + "  requests/min")
    for clients in (1, 2, 3, 4):
        tens, per_minute = utilisation_samples(clients)
        spreads = []
        for window in WINDOWS:
            k = window // 10
            means = [statistics.fmean(tens[i : i + k]) for i in range(0, len(tens) - k + 1, k)]
            spreads.append(statistics.stdev(means))
        row = f"{clients:>7}  {statistics.fmean(tens):>6.1f}  " + "  ".join(f"{sd:>12.1f}" for sd in spreads)
        print(f"{row}  {per_minute:>12.1f}")


if __name__ == "__main__":
    main()
