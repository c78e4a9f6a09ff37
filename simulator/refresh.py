"""The figures of a deploy's refresh, from what the observer recorded: plain data in, a dict out.

A deploy creates launch template version V. The twin follows the fleet at every change
(``FleetPoint``) and, per deploy, reports:
- ``seconds_to_all_new``: from the deploy until every instance that stays in the fleet (alive,
  not draining: in service, booting, in the pool or warming) runs V, no warm-up is still
  installing and the pool holds its seats again (``plan.pool_seats`` at the desired capacity):
  the pool is part of what a deploy replaces; None if never;
- ``rolled_back``: instances of V appeared and later none stays (the fleet is back on other
  versions), and when;
- the **refresh window**: from the deploy until all new, or rolled back, or the next deploy, or
  the end of the scenario, whichever comes first; over it:
  - the failed requests (502, 503, 504) among those sent in it;
  - ``min_headroom``: the least of (in service - desired), in service by the one rule
    ``autoscaler.model.serving`` the control plane and the observer count with, desired as the
    control plane last saved it; >= 0 means capacity never fell below desired. A state that lasts
    no time (two changes at the same instant) does not count.
  - ``seconds_below_desired``: how long in service was below desired.
- ``extra_instance_seconds`` (set by the report): billed instance-seconds of the run minus those
  of the same scenario and seed without its deploys, beside ``refresh_seconds`` (one instance for
  the whole window, what a one-at-a-time surge would cost).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.stack import Deploy
from simulator.traffic import BAD_GATEWAY, GATEWAY_TIMEOUT, OK_STATUS, UNAVAILABLE


@dataclass(frozen=True)
class FleetPoint:
    """The fleet from scenario time ``t`` until the next point."""

    t: float
    in_service: int
    desired: int | None  # the control plane's saved desired capacity (None before its first decision)
    # (version, instances staying in the fleet, of them in service), by version
    versions: tuple[tuple[str, int, int], ...]
    warming: int = 0  # warm-ups still installing (the pool's seats not yet held)
    pool: int = 0  # instances in the pool (stopped or stopping)

    def staying(self) -> dict[str, int]:
        return {v: n for v, n, _ in self.versions if n}


def _settled(points: Sequence[FleetPoint]) -> list[FleetPoint]:
    """One point per instant, the last: a state that lasts no time is not a state of the fleet."""
    out: list[FleetPoint] = []
    for point in points:
        if out and out[-1].t == point.t:
            out[-1] = point
        else:
            out.append(point)
    return out


def _at(points: Sequence[FleetPoint], t: float) -> FleetPoint | None:
    current = None
    for point in points:
        if point.t > t:
            break
        current = point
    return current


def refresh_figures(
    deploy: Deploy,
    points: Sequence[FleetPoint],
    until: float,
    sent: np.ndarray,
    status: np.ndarray,
    pool_seats: Callable[[int], int] = lambda _desired: 0,
) -> dict[str, Any]:
    """The figures of ``deploy``'s refresh, looked at until ``until`` (the next deploy or the end)."""
    fleet = _settled(points)
    start = _at(fleet, deploy.at)
    during = ([start] if start is not None else []) + [p for p in fleet if deploy.at < p.t <= until]
    version = deploy.version
    all_new_at = rolled_back_at = None
    new_seen = False
    for point in during:
        staying = point.staying()
        seated = point.pool >= pool_seats(point.desired or 0)
        if staying and set(staying) == {version} and not point.warming and seated:
            all_new_at = max(point.t, deploy.at)
            break
        if staying.get(version):
            new_seen = True
        elif new_seen and staying:
            rolled_back_at = point.t
            break
    end = all_new_at if all_new_at is not None else rolled_back_at if rolled_back_at is not None else until
    window = [p for p in during if p.t <= end]
    headroom, below = _headroom(window, deploy.at, end)
    in_window = (sent >= deploy.at) & (sent < end)
    errors = in_window & (status != OK_STATUS)
    return {
        "at": deploy.at,
        "version": version,
        "previous_version": deploy.previous,
        "healthy": deploy.healthy,
        "install_seconds": None if deploy.install_seconds is None else list(deploy.install_seconds),
        "seconds_to_all_new": None if all_new_at is None else round(all_new_at - deploy.at, 1),
        "rolled_back": rolled_back_at is not None,
        "seconds_to_rolled_back": None if rolled_back_at is None else round(rolled_back_at - deploy.at, 1),
        "new_instances_seen": new_seen or all_new_at is not None,
        "window_end": round(end, 1),
        "refresh_seconds": round(end - deploy.at, 1),
        "requests": int(np.count_nonzero(in_window)),
        "failed_requests": int(np.count_nonzero(errors)),
        "bad_gateway": int(np.count_nonzero(in_window & (status == BAD_GATEWAY))),
        "shed": int(np.count_nonzero(in_window & (status == UNAVAILABLE))),
        "timeouts": int(np.count_nonzero(in_window & (status == GATEWAY_TIMEOUT))),
        "min_headroom": headroom,
        "seconds_below_desired": round(below, 1),
        "extra_instance_seconds": None,
        "timeline": [_point_json(p) for p in window],
    }


def _point_json(point: FleetPoint) -> dict[str, Any]:
    """A fleet point for the report: per version, [staying, of them in service]."""
    versions = {v: [n, s] for v, n, s in point.versions if n or s}
    return {"t": round(point.t, 1), "in_service": point.in_service, "desired": point.desired, "versions": versions}


def _headroom(window: Sequence[FleetPoint], start: float, end: float) -> tuple[int | None, float]:
    """The least (in service - desired) over the window, and the seconds it was below zero."""
    least: int | None = None
    below = 0.0
    for point, following in zip(window, [*window[1:], None], strict=True):
        if point.desired is None:
            continue
        margin = point.in_service - point.desired
        least = margin if least is None else min(least, margin)
        if margin < 0:
            stop = end if following is None else following.t
            below += max(0.0, stop - max(point.t, start))
    return least, below


def _check(name: str, expected: Any, actual: Any, passed: bool) -> dict[str, Any]:
    return {"check": name, "expected": expected, "actual": actual, "passed": passed}


def deploy_checks(figures: Sequence[dict[str, Any]], expect: Any) -> list[dict[str, Any]]:
    """The scenario's deploy expectations, each checked for every deploy."""
    checks: list[dict[str, Any]] = []
    for f in figures:
        name = f"deploy@{f['at']:g}"
        within = expect.expect_all_new_within
        if within is not None:
            done = f["seconds_to_all_new"]
            checks.append(_check(f"{name} all_new_within", f"<= {within:g}", "never" if done is None else done,
                                 done is not None and done <= within))  # fmt: skip
        failed = expect.expect_failed_requests
        if failed is not None:
            checks.append(_check(f"{name} failed_requests", f"<= {failed}", f["failed_requests"],
                                 f["failed_requests"] <= failed))  # fmt: skip
        least = expect.expect_min_headroom
        if least is not None:
            headroom = f["min_headroom"]
            checks.append(_check(f"{name} min_headroom", f">= {least}", headroom,
                                 headroom is not None and headroom >= least))  # fmt: skip
        rolled = expect.expect_rolled_back
        if rolled is not None:
            checks.append(_check(f"{name} rolled_back", rolled, f["rolled_back"], f["rolled_back"] == rolled))
        instances = expect.expect_extra_instances
        if instances is not None:
            extra, window = f.get("extra_instance_seconds"), f["refresh_seconds"]
            bound = instances * window
            checks.append(_check(f"{name} extra_instance_seconds", f"<= {bound:g} ({instances:g} x {window:g} s)",
                                 "not measured" if extra is None else extra,
                                 extra is not None and extra <= bound))  # fmt: skip
    return checks


def deploy_lines(figures: Sequence[dict[str, Any]]) -> list[str]:
    """One line per deploy for the run's table."""
    lines = []
    for f in figures:
        done = f["seconds_to_all_new"]
        back = f["seconds_to_rolled_back"]
        state = (
            f"all on v{f['version']} after {done:.0f} s" if done is not None
            else f"rolled back to other versions after {back:.0f} s" if back is not None
            else f"never all on v{f['version']}" + ("" if f["new_instances_seen"] else " (no instance of it launched)")
        )  # fmt: skip
        extra = f["extra_instance_seconds"]
        cost = "-" if extra is None else str(round(extra))
        headroom = "-" if f["min_headroom"] is None else str(f["min_headroom"])
        lines.append(
            f"deploy at {f['at']:g} s (v{f['previous_version']} -> v{f['version']}, "
            f"{'healthy' if f['healthy'] else 'unhealthy'}): {state}; in its window of {f['refresh_seconds']:.0f} s: "
            f"failed requests {f['failed_requests']} (502 {f['bad_gateway']}, 503 {f['shed']}, 504 {f['timeouts']}), "
            f"min in service - desired {headroom} ({f['seconds_below_desired']:.0f} s below), "
            f"extra instance-s {cost} (1 instance x window {f['refresh_seconds']:.0f})"
        )
        answer = f.get("update_response")
        if answer is not None:
            lines.append(f"  the Fleet resource answered the Update {answer['status']} at {answer['t']:g} s: "
                         f"{answer['reason'][:160]}")  # fmt: skip
    return lines
