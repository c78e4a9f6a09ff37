"""Rolling replacement (an "instance refresh") as pure functions over plain data.

Modelled on EC2 Auto Scaling's instance refresh ("How an instance refresh works in an Auto
Scaling group", EC2 Auto Scaling user guide) and Kubernetes' rolling update (``maxSurge`` /
``maxUnavailable``, "Deployments", Kubernetes documentation):

- every instance knows its launch-template version: EC2 tags each instance launched from a
  template with ``aws:ec2launchtemplate:version`` (EC2 user guide, "Launch an instance from a
  launch template");
- a refresh names a target version; instances on any other version (and instances older than
  the maximum lifetime) are *stale*;
- the warm pool is replaced first, then the instances in service, surge first: never fewer
  in service than ``min_healthy_percent`` of the desired capacity, never more instances meant
  to serve than desired + ``max_surge``;
- optional checkpoints pause the refresh at percentages of the fleet on the new version;
- a configured alarm in ALARM, or a replacement that never becomes healthy, fails the refresh
  and (by default) rolls it back: the previous version is pinned and replaces the new one.

The refresh lives in the fleet state; every controller run advances it from what it sees, so
a crash mid-refresh is resumed by the next run. ``plan.plan`` does the replacing; this module
decides the refresh's status and what the plan may do.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from autoscaler.model import Instance, Lifecycle


class RefreshStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    PAUSED = "Paused"  # at a checkpoint, until its delay has passed
    ROLLING_BACK = "RollingBack"
    SUCCESSFUL = "Successful"
    CANCELLED = "Cancelled"
    FAILED = "Failed"  # an alarm or a failed replacement, and no rollback
    ROLLED_BACK = "RolledBack"


ACTIVE = frozenset({RefreshStatus.IN_PROGRESS, RefreshStatus.PAUSED, RefreshStatus.ROLLING_BACK})


@dataclass(frozen=True)
class Preferences:
    """How a refresh replaces; the defaults come from the template through ``Settings``."""

    min_healthy_percent: int = 100
    max_surge: int = 1
    # Instead of a count: this percentage of the desired capacity, rounded up (Kubernetes' maxSurge).
    max_surge_percent: int | None = None
    # A replacement counts as done this long after it entered service (and is healthy).
    warmup_seconds: int = 60
    checkpoints: tuple[int, ...] = ()
    checkpoint_delay_seconds: int = 3600
    auto_rollback: bool = True
    # Fail (and roll back) when any of these alarms is in ALARM during the refresh.
    alarm_names: tuple[str, ...] = ()
    # Replace only instances whose version differs (False: replace every instance once).
    skip_matching: bool = True

    def surge(self, desired: int) -> int:
        """Instances allowed beyond ``desired``."""
        if self.max_surge_percent is None:
            return self.max_surge
        return math.ceil(self.max_surge_percent * desired / 100)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Preferences:
        """The inverse of ``asdict`` (as ``Refresh.to_json`` writes them: tuples as lists)."""
        prefs = dict(body)
        prefs["checkpoints"] = tuple(prefs.get("checkpoints", ()))
        prefs["alarm_names"] = tuple(prefs.get("alarm_names", ()))
        return cls(**prefs)

    @property
    def surge_text(self) -> str:
        return f"{self.max_surge_percent} %" if self.max_surge_percent is not None else str(self.max_surge)

    def problems(self) -> list[str]:
        out = []
        if not 0 <= self.min_healthy_percent <= 100:
            out.append(f"min healthy percentage must be 0-100, got {self.min_healthy_percent}")
        if self.max_surge < 0 or (self.max_surge_percent is not None and self.max_surge_percent < 0):
            out.append(f"max surge must be >= 0, got {self.surge_text}")
        if self.surge(1) == 0 and self.min_healthy_percent == 100:
            out.append("max surge 0 with min healthy 100 % can replace nothing: allow a surge or lower min healthy")
        if any(not 0 < c <= 100 for c in self.checkpoints) or list(self.checkpoints) != sorted(set(self.checkpoints)):
            out.append(f"checkpoints must be increasing percentages in (0, 100], got {list(self.checkpoints)}")
        if self.warmup_seconds < 0 or self.checkpoint_delay_seconds < 0:
            out.append("warm-up and checkpoint delay must be >= 0 seconds")
        return out


_SURGE = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


def surge_values(text: str | int) -> dict[str, int | None]:
    """``max_surge`` / ``max_surge_percent`` of a count ("1") or a percentage ("25%")."""
    match = _SURGE.match(str(text))
    if match is None:
        raise ValueError(f"max surge must be a count (1) or a percentage of desired (25%), got {text!r}")
    number = int(match.group(1))
    return (
        {"max_surge": 0, "max_surge_percent": number}
        if match.group(2)
        else {"max_surge": number, "max_surge_percent": None}
    )


@dataclass(frozen=True)
class Refresh:
    """One instance refresh, as the state table keeps it (the latest one stays after it ends)."""

    refresh_id: str
    status: RefreshStatus
    target_version: str  # what instances converge to now (the previous version while rolling back)
    previous_version: str | None  # what a rollback returns to
    started_at: datetime
    updated_at: datetime
    cause: str  # "deploy", "operator", ...
    preferences: Preferences = field(default_factory=Preferences)
    # The version a rollback rejected: a deploy of it again starts no refresh.
    rejected_version: str | None = None
    checkpoints_passed: int = 0
    paused_until: datetime | None = None
    # Instances that started the refresh stale (the base of the percentage) and replacements that failed.
    to_replace: int = 0
    failed_replacements: tuple[str, ...] = ()
    status_reason: str = ""
    # Instances present at the start, for skip_matching=False: each is replaced once.
    originals: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def replacing(self) -> bool:
        """The plan may replace instances now (not paused, not ended)."""
        return self.status in {RefreshStatus.IN_PROGRESS, RefreshStatus.ROLLING_BACK}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "refresh_id": self.refresh_id,
            "status": self.status.value,
            "target_version": self.target_version,
            "previous_version": self.previous_version,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "cause": self.cause,
            # Every field of Preferences, so a new one cannot be left out (tuples dump as lists).
            "preferences": asdict(self.preferences),
            "rejected_version": self.rejected_version,
            "checkpoints_passed": self.checkpoints_passed,
            "paused_until": self.paused_until.isoformat() if self.paused_until else None,
            "to_replace": self.to_replace,
            "failed_replacements": list(self.failed_replacements),
            "status_reason": self.status_reason,
            "originals": list(self.originals),
        }
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Refresh:
        paused = body.get("paused_until")
        return cls(
            refresh_id=str(body["refresh_id"]),
            status=RefreshStatus(body["status"]),
            target_version=str(body["target_version"]),
            previous_version=body.get("previous_version"),
            started_at=datetime.fromisoformat(body["started_at"]),
            updated_at=datetime.fromisoformat(body["updated_at"]),
            cause=str(body.get("cause", "")),
            preferences=Preferences.from_json(body.get("preferences") or {}),
            rejected_version=body.get("rejected_version"),
            checkpoints_passed=int(body.get("checkpoints_passed", 0)),
            paused_until=datetime.fromisoformat(paused) if paused else None,
            to_replace=int(body.get("to_replace", 0)),
            failed_replacements=tuple(body.get("failed_replacements", ())),
            status_reason=str(body.get("status_reason", "")),
            originals=tuple(body.get("originals", ())),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


@dataclass(frozen=True)
class Rollout:
    """What ``plan`` needs to know of versions: which one to run and whether to replace now."""

    version: str | None = None  # the version new instances get; None: versions are not looked at
    replacing: bool = False  # an active, unpaused refresh: stale-by-version instances are replaced
    preferences: Preferences = field(default_factory=Preferences)
    max_lifetime_seconds: float = 0.0  # 0: no limit; older instances are replaced at any time
    originals: frozenset[str] = frozenset()  # replaced whatever their version (skip_matching off)

    def stale(self, instance: Instance, now: datetime) -> bool:
        if self.max_lifetime_seconds > 0 and now - instance.launch_time >= timedelta(seconds=self.max_lifetime_seconds):
            return True
        if not self.replacing:
            return False
        return instance.version != self.version or instance.instance_id in self.originals

    def warmed(self, instance: Instance, now: datetime) -> bool:
        """In service, healthy, and past the warm-up since it entered service."""
        since = instance.since or instance.launch_time
        return instance.in_service and now - since >= timedelta(seconds=self.preferences.warmup_seconds)


def members(instances: Iterable[Instance]) -> list[Instance]:
    """The instances a refresh counts: alive and serving, booting, pooled or warming."""
    return [i for i in instances if i.alive and i.lifecycle is not Lifecycle.DRAINING]


def stale_members(instances: Iterable[Instance], rollout: Rollout, now: datetime) -> list[Instance]:
    return [i for i in members(instances) if rollout.stale(i, now)]


@dataclass(frozen=True)
class Progress:
    """Old vs new, in service and in the pool (the dashboard and ``fleetctl status`` show it)."""

    target_version: str | None
    new_in_service: int
    old_in_service: int
    new_pool: int
    old_pool: int
    remaining: int  # stale members (service, pool, warming)
    percent: int  # of members on the target version

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def progress(instances: Sequence[Instance], rollout: Rollout, now: datetime) -> Progress:
    listed = members(instances)
    stale = {i.instance_id for i in listed if rollout.stale(i, now)}
    if rollout.version is not None and not rollout.replacing:
        # Between refreshes "old" still means "not the version new instances get".
        stale |= {i.instance_id for i in listed if i.version != rollout.version}

    def count(lifecycle: Lifecycle, old: bool, *, serving: bool = False) -> int:
        return sum(
            1
            for i in listed
            if i.lifecycle is lifecycle and (i.instance_id in stale) == old and (i.in_service or not serving)
        )

    new = len(listed) - len(stale)
    return Progress(
        target_version=rollout.version,
        new_in_service=count(Lifecycle.SERVICE, False, serving=True),
        old_in_service=count(Lifecycle.SERVICE, True, serving=True),
        new_pool=count(Lifecycle.POOL, False),
        old_pool=count(Lifecycle.POOL, True),
        remaining=len(stale),
        percent=100 if not listed else int(100 * new / len(listed)),
    )


def launch_version(configured: str, refresh: Refresh | None) -> str:
    """The version new instances get: the refresh's target (pinned back after a rollback),
    or the one the deployment configured."""
    return refresh.target_version if refresh is not None else configured


def deploy_pending(configured: str, refresh: Refresh | None, instances: Sequence[Instance]) -> bool:
    """Whether the configured version calls for a new refresh: it differs from what the last
    refresh converged to and from what a rollback rejected. Without any refresh yet, only when
    some instance runs another version (a first deploy needs none)."""
    if refresh is None:
        return any(i.version != configured for i in members(instances))
    return configured not in {refresh.target_version, refresh.rejected_version}


def report(
    refresh: Refresh | None,
    configured: str,
    instances: Sequence[Instance],
    now: datetime,
    max_lifetime_seconds: float = 0.0,
) -> dict[str, Any]:
    """The latest refresh and how far the fleet is on its version, as operators read it: the
    configured version, the one new instances get (``launch_version``: pinned back after a
    rollback), whether the next run starts a refresh for the configured one, and old vs new."""
    rollout = rollout_of(refresh, configured, max_lifetime_seconds)
    return {
        "configured_version": configured,
        "launch_version": launch_version(configured, refresh),
        "deploy_pending": deploy_pending(configured, refresh, instances),
        "refresh": refresh.to_json() if refresh is not None else None,
        "progress": progress(instances, rollout, now).to_json(),
    }


def majority_version(instances: Iterable[Instance], exclude: str) -> str | None:
    versions = Counter(i.version for i in members(instances) if i.version and i.version != exclude)
    return versions.most_common(1)[0][0] if versions else None


def new_refresh(
    target: str,
    previous: str | None,
    preferences: Preferences,
    cause: str,
    instances: Sequence[Instance],
    now: datetime,
) -> Refresh:
    refresh = Refresh(
        refresh_id=f"refresh-{uuid.uuid4().hex[:8]}",
        status=RefreshStatus.IN_PROGRESS,
        target_version=target,
        previous_version=previous,
        started_at=now,
        updated_at=now,
        cause=cause,
        preferences=preferences,
        originals=() if preferences.skip_matching else tuple(i.instance_id for i in members(instances)),
    )
    stale = stale_members(instances, rollout_of(refresh, target), now)
    return replace(refresh, to_replace=len(stale))


def rollout_of(
    refresh: Refresh | None,
    configured: str,
    max_lifetime_seconds: float = 0.0,
    defaults: Preferences | None = None,
) -> Rollout:
    """How the plan replaces now: by the active refresh's preferences, else (lifetime
    replacement) by ``defaults``, the template's."""
    idle = defaults or Preferences()
    if refresh is None:
        return Rollout(version=configured, preferences=idle, max_lifetime_seconds=max_lifetime_seconds)
    return Rollout(
        version=refresh.target_version,
        replacing=refresh.replacing,
        preferences=refresh.preferences if refresh.replacing else idle,
        max_lifetime_seconds=max_lifetime_seconds,
        originals=frozenset(refresh.originals) if refresh.replacing else frozenset(),
    )


@dataclass(frozen=True)
class Step:
    """The refresh after this run, and what happened to it (for the activity history)."""

    refresh: Refresh | None
    event: str | None = None  # refresh-started, -checkpoint, -resumed, -succeeded, -rolling-back, ...
    message: str = ""


def advance(
    refresh: Refresh | None,
    instances: Sequence[Instance],
    now: datetime,
    *,
    alarms_in_alarm: Sequence[str] = (),
    failed: Sequence[str] = (),
    refilling: bool = False,
) -> Step:
    """Move an active refresh on: fail or roll back on an alarm or a failed replacement
    (``failed``: target-version instances that never became healthy or ready), pause at
    checkpoints, resume after their delay, end when nothing stale is left and the pool holds its
    seats again (``refilling``: a warm-up is installing or about to be launched)."""
    if refresh is None or not refresh.active:
        return Step(refresh)
    if failed:
        refresh = replace(refresh, failed_replacements=(*refresh.failed_replacements, *failed))
    trouble = ""
    if alarms_in_alarm:
        trouble = f"alarm in ALARM: {', '.join(alarms_in_alarm)}"
    elif failed:
        trouble = f"replacement never became healthy: {', '.join(failed)}"
    if trouble and refresh.status is not RefreshStatus.ROLLING_BACK:
        return (
            rollback(refresh, instances, now, trouble)
            if refresh.preferences.auto_rollback
            else fail(refresh, now, trouble)
        )

    rollout = rollout_of(refresh, refresh.target_version)
    done = progress(instances, replace(rollout, replacing=True), now)
    if refresh.status is RefreshStatus.PAUSED:
        if refresh.paused_until is not None and now < refresh.paused_until:
            return Step(refresh)
        resumed = replace(refresh, status=RefreshStatus.IN_PROGRESS, paused_until=None, updated_at=now)
        return Step(resumed, "refresh-resumed", f"{refresh.refresh_id} resumed after its checkpoint")
    # Retired instances still draining must be gone too, or the pool could seat one again.
    leaving = any(
        i.alive and i.lifecycle is Lifecycle.DRAINING and i.version != refresh.target_version for i in instances
    )
    if done.remaining == 0 and not leaving and not refilling:
        final = RefreshStatus.ROLLED_BACK if refresh.status is RefreshStatus.ROLLING_BACK else RefreshStatus.SUCCESSFUL
        ended = replace(refresh, status=final, updated_at=now)
        event = "refresh-rolled-back" if final is RefreshStatus.ROLLED_BACK else "refresh-succeeded"
        return Step(ended, event, f"{refresh.refresh_id}: every instance runs version {refresh.target_version}")
    checkpoints = refresh.preferences.checkpoints
    if refresh.status is RefreshStatus.IN_PROGRESS and refresh.checkpoints_passed < len(checkpoints):
        mark = checkpoints[refresh.checkpoints_passed]
        if done.percent >= mark and mark < 100:
            until = now + timedelta(seconds=refresh.preferences.checkpoint_delay_seconds)
            paused = replace(
                refresh,
                status=RefreshStatus.PAUSED,
                checkpoints_passed=refresh.checkpoints_passed + 1,
                paused_until=until,
                updated_at=now,
            )
            return Step(
                paused,
                "refresh-checkpoint",
                f"{refresh.refresh_id} at {done.percent} % (checkpoint {mark} %), paused until {until.isoformat()}",
            )
    return Step(refresh)


def rollback(refresh: Refresh, instances: Sequence[Instance], now: datetime, why: str) -> Step:
    """Pin the previous version back and replace the new instances with it."""
    if refresh.previous_version is None or refresh.status is RefreshStatus.ROLLING_BACK:
        return fail(refresh, now, f"{why}; no previous version to roll back to")
    back = replace(
        refresh,
        status=RefreshStatus.ROLLING_BACK,
        target_version=refresh.previous_version,
        previous_version=refresh.target_version,
        rejected_version=refresh.target_version,
        paused_until=None,
        originals=(),
        updated_at=now,
        status_reason=why,
    )
    rollout = rollout_of(back, back.target_version)
    back = replace(back, to_replace=len(stale_members(instances, rollout, now)))
    return Step(back, "refresh-rolling-back", f"{refresh.refresh_id}: {why}; back to version {back.target_version}")


def fail(refresh: Refresh, now: datetime, why: str) -> Step:
    failed = replace(refresh, status=RefreshStatus.FAILED, paused_until=None, updated_at=now, status_reason=why)
    return Step(failed, "refresh-failed", f"{refresh.refresh_id}: {why}; replacing stopped")


def cancel(refresh: Refresh | None, now: datetime, why: str = "cancelled by the operator") -> Step:
    if refresh is None or not refresh.active:
        return Step(refresh)
    cancelled = replace(refresh, status=RefreshStatus.CANCELLED, paused_until=None, updated_at=now, status_reason=why)
    return Step(cancelled, "refresh-cancelled", f"{refresh.refresh_id}: {why}; instances already replaced stay")


def failed_replacements(instances: Sequence[Instance], gave_up: Iterable[str], version: str) -> list[str]:
    """Target-version instances the plan gives up on (``Plan.gave_up``): in service but never
    healthy past the grace period, or warm-ups that never reported ready."""
    by_id = {i.instance_id: i for i in instances}
    return [i for i in gave_up if i in by_id and by_id[i].version == version]
