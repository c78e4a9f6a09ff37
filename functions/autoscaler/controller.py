"""One control loop iteration: lease, observe, decide, remember, reconcile, record.

Like the HPA's ``horizontal.go`` this module holds the I/O and the state; the arithmetic lives
in ``decide`` and ``plan``. Every iteration is level-triggered: it re-reads the fleet and
converges it, whatever the previous iteration managed to do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from autoscaler.adapters.cloudwatch import FleetSignals
from autoscaler.adapters.ec2 import Ec2Fleet
from autoscaler.adapters.elb import TargetGroup
from autoscaler.adapters.state import Activity, StateStore
from autoscaler.decide import (
    current_desired,
    panic_held,
    recent_recommendations,
    scale_out_at,
    signal_recommendations,
)
from autoscaler.errors import LeaseBusyError, StateConflictError
from autoscaler.execute import Executor, Result
from autoscaler.model import (
    Decision,
    Direction,
    FleetCounts,
    FleetState,
    Instance,
    Lifecycle,
    Recommendation,
    Snapshot,
    TargetHealth,
)
from autoscaler.observability import logger
from autoscaler.plan import Plan, PlanLimits, plan
from autoscaler.refresh import (
    Refresh,
    Step,
    advance,
    deploy_pending,
    failed_replacements,
    launch_version,
    majority_version,
    new_refresh,
    progress,
    rollout_of,
)
from autoscaler.runtime import Runtime
from autoscaler.signals import HostReport, recent_reports, report_horizon, with_reports

LEASE_POLL_SECONDS = 1.0
DELETE_POLL_SECONDS = 5.0
MANUAL = "manual"
_STORED = object()  # _run_locked: use the refresh the state table holds


@dataclass(frozen=True)
class Trigger:
    """Why this iteration runs."""

    cause: str  # alarm name, "schedule", "manual", "lifecycle"
    directions: frozenset[Direction] = frozenset()
    event_time: datetime | None = None  # the alarm's StateChangeTime
    # The alarm whose ALARM notification invoked us: acted on only while it is still in ALARM.
    alarm: str | None = None
    # Wait for the lease and raise if it stays busy (events must not be dropped); a scheduled
    # run simply skips, the next minute comes anyway.
    must_run: bool = True
    read_alarms: bool = False
    override_desired: int | None = None  # fleetctl scale --to N
    dry_run: bool = False  # decide and plan as for real, change nothing (no lease, no writes)
    lease_wait_seconds: float | None = None  # how long to wait for the lease (default LEASE_WAIT_SECONDS)
    ignore_suspend: bool = False
    details: dict[str, object] = field(default_factory=dict)
    # Datapoints hosts reported themselves (their demand reports), counted beside CloudWatch's.
    reports: tuple[HostReport, ...] = ()


@dataclass(frozen=True)
class Outcome:
    status: str  # "acted", "skipped", "dry-run"
    reason: str
    decision: Decision | None = None
    plan: Plan | None = None
    result: Result | None = None
    refresh: Step | None = None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"status": self.status, "reason": self.reason}
        if self.refresh is not None and self.refresh.refresh is not None:
            body["refresh"] = self.refresh.refresh.to_json()
            if self.refresh.event:
                body["refresh_event"] = self.refresh.event
                body["refresh_message"] = self.refresh.message
        if self.decision:
            body["desired"] = self.decision.desired
            body["previous"] = self.decision.previous
            body["message"] = self.decision.message
        if self.plan and not self.plan.empty:
            body["plan"] = self.plan.summary()
        if self.result and self.result.to_json():
            body["result"] = self.result.to_json()
        return body


class Controller:
    def __init__(self, runtime: Runtime) -> None:
        s = runtime.settings
        c = runtime.clients
        self.runtime = runtime
        self.settings = s
        self.clock = runtime.clock
        self._ec2 = Ec2Fleet(c.ec2, s, runtime.clock)
        self._target_group = TargetGroup(c.elbv2, s.target_group_arn)
        self._signals = FleetSignals(c.cloudwatch, s)
        self._store = StateStore(c.dynamodb, s.table_name, s.fleet_name, s.history_ttl_days)
        self._executor = Executor(self._ec2, self._target_group, runtime.clock, s.subnet_ids, s.running_wait_seconds)
        self._limits = PlanLimits(
            subnet_ids=s.subnet_ids,
            warm_pool_size=s.warm_pool_size,
            max_prepared_capacity=s.max_prepared_capacity,
            health_grace_seconds=s.health_grace_seconds,
            warmup_timeout_seconds=s.warmup_timeout_seconds,
            drain_timeout_seconds=s.drain_timeout_seconds,
        )

    # --- lease -------------------------------------------------------------------------------
    def _acquire(self, owner: str, must_run: bool, wait_seconds: float | None = None) -> bool:
        wait = self.settings.lease_wait_seconds if wait_seconds is None else wait_seconds
        deadline = self.clock.now().timestamp() + (wait if must_run else 0)
        while True:
            if self._store.acquire_lease(owner, self.clock.now(), self.settings.lease_seconds):
                return True
            if self.clock.now().timestamp() >= deadline:
                if must_run:
                    raise LeaseBusyError("another invocation holds the fleet's decision lease")
                return False
            self.clock.sleep(LEASE_POLL_SECONDS)

    @contextmanager
    def lease(self, must_run: bool = True, wait_seconds: float | None = None) -> Iterator[bool]:
        """Hold the fleet's decision lease for the ``with`` block; yields whether it was taken
        (``must_run``: wait up to ``wait_seconds``, default LEASE_WAIT_SECONDS, then raise
        ``LeaseBusyError``)."""
        owner = uuid.uuid4().hex
        acquired = self._acquire(owner, must_run, wait_seconds)
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    self._store.release_lease(owner)
                except StateConflictError:
                    logger.warning("lease expired before this invocation finished; raise LEASE_SECONDS")

    def run(self, trigger: Trigger) -> Outcome:
        if trigger.dry_run:
            return self._run_locked(trigger)  # reads only: no lease to hold
        with self.lease(trigger.must_run, trigger.lease_wait_seconds) as acquired:
            return self._run_locked(trigger) if acquired else Outcome("skipped", "lease-busy")

    # --- the fleet, for entry points and fleetctl (nothing outside reaches the adapters) ------
    def state(self) -> FleetState:
        return self._store.load()

    def activities(self, since: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return self._store.activities(since, limit=limit)

    def desired_now(self) -> int:
        """The desired capacity now: remembered, or (before any decision) what serves or boots."""
        state = self.state()
        if state.desired is not None:
            return state.desired  # the instances are listed only when nothing is remembered
        counts = FleetCounts.of(self.instances())
        return current_desired(state, counts.capacity, self.runtime.scaling_policy())

    def suspend(self, suspended: bool, cause: str | None = None) -> None:
        """Pause or resume automatic scaling; with a ``cause``, recorded in the activity history
        (without one: the custom resource's own bookkeeping)."""
        self._store.set_suspended(suspended)
        if cause is None:
            return
        state = self._store.load()
        desired = state.desired if state.desired is not None else 0
        self._store.record(
            Activity(
                activity_id=uuid.uuid4().hex[:12],
                at=self.clock.now(),
                cause=cause,
                reason="suspend" if suspended else "resume",
                from_desired=desired,
                to_desired=desired,
                status="Successful",
            )
        )

    def remember_cleared(self, alarm: str, at: datetime) -> None:
        """An alarm's transition out of ALARM, so a late ALARM from before it does not act."""
        self._store.remember_cleared(alarm, at)

    def terminate_everything(self, timeout_seconds: float) -> dict[str, Any]:
        """Deregister and terminate every fleet instance, under the decision lease, and wait until
        EC2 reports them gone (``LeaseBusyError`` if the lease stays busy throughout)."""
        deadline = self.clock.now().timestamp() + timeout_seconds
        terminated: set[str] = set()
        with self.lease(wait_seconds=timeout_seconds):
            while True:
                instances = self.instances(include_shutting_down=True)
                if not instances:
                    return {"status": "deleted", "terminated": sorted(terminated)}
                ids = [i.instance_id for i in instances if i.state != "shutting-down"]
                registered = [i.instance_id for i in instances if i.health is not TargetHealth.UNUSED]
                self._target_group.deregister(registered)
                self._ec2.terminate(ids)
                terminated.update(ids)
                if self.clock.now().timestamp() >= deadline:
                    remaining = [i.instance_id for i in instances]
                    return {"status": "timeout", "remaining": remaining, "terminated": sorted(terminated)}
                self.clock.sleep(DELETE_POLL_SECONDS)

    def instances(self, include_shutting_down: bool = False) -> list[Instance]:
        """The fleet's live instances with their target health (two calls at any fleet size)."""
        health = self._target_group.health()
        return [
            replace(i, health=health.get(i.instance_id, TargetHealth.UNUSED))
            for i in self._ec2.describe(include_shutting_down)
        ]

    def _run_locked(self, trigger: Trigger, refresh: Refresh | object | None = _STORED) -> Outcome:
        """One iteration; ``refresh``: a proposed refresh instead of the stored one (dry runs)."""
        now = self.clock.now()
        state = self._store.load()
        if refresh is not _STORED:
            state = replace(state, refresh=cast("Refresh | None", refresh))
        if trigger.event_time and state.last_scaling_at and trigger.event_time < state.last_scaling_at:
            return Outcome("skipped", "stale-transition")
        if state.suspended and not trigger.ignore_suspend:
            return Outcome("skipped", "suspended")
        if trigger.alarm is not None:
            # A notification can arrive after its alarm went back to OK (Lambda retries an
            # invocation 1-2 minutes later; deliveries are not ordered): act only while it is in
            # ALARM, as the reconcile does.
            cleared = state.alarms_cleared_at.get(trigger.alarm)
            if cleared is not None and trigger.event_time is not None and trigger.event_time <= cleared:
                return Outcome("skipped", "alarm-cleared-since")
            if self._signals.alarm_states([trigger.alarm]).get(trigger.alarm) != "ALARM":
                return Outcome("skipped", "alarm-not-in-alarm")

        instances = self.instances()
        manual = trigger.override_desired is not None
        policy = self.runtime.scaling_policy()
        in_service = [i.instance_id for i in instances if i.in_service]
        # Only a host the fleet serves with may speak for its demand.
        serving = set(in_service)
        if trigger.reports and not any(r.instance_id in serving for r in trigger.reports):
            return Outcome("skipped", "report-not-in-service")
        reports = recent_reports((r for r in (*state.reports, *trigger.reports) if r.instance_id in serving),
                                 now, report_horizon(policy.signals))  # fmt: skip
        data = {} if manual or not in_service else self._signals.read(policy.signals, in_service, now)
        if reports and data:
            data = with_reports(data, policy.signals, reports)
        active = set(trigger.directions)
        states: dict[str, str] | None = None
        if trigger.read_alarms:
            # One DescribeAlarms for the scaling alarms and those a refresh watches (one that is
            # running, or one a deploy may start in this run).
            running = state.refresh.preferences.alarm_names if state.refresh and state.refresh.active else ()
            watched = dict.fromkeys([*self.settings.all_alarm_names, *running, *self.settings.refresh_alarm_names])
            # An alarm that does not exist is not in ALARM; naming it keeps it from being asked twice.
            states = dict.fromkeys(watched, "INSUFFICIENT_DATA") | self._signals.alarm_states(list(watched))
            active |= self._signals.active_directions(states)
        snapshot = Snapshot(tuple(instances), state, data, frozenset(active), trigger.cause)

        if manual:
            assert trigger.override_desired is not None
            previous = current_desired(state, snapshot.capacity, policy)
            target = max(policy.min_size, min(policy.max_size, trigger.override_desired))
            decision = Decision(target, previous, MANUAL, f"operator asked for {trigger.override_desired}")
        else:
            decision = self.runtime.decide(snapshot, now)
        step, actions = self._refresh_and_plan(state.refresh, instances, decision.desired, now, states)
        if trigger.dry_run:
            return Outcome("dry-run", decision.reason, decision, actions, refresh=step)

        recommendations = state.recommendations
        if decision.recommendation is not None:
            recommendations = (*recommendations, Recommendation(now, decision.recommendation))
        new_state = replace(
            state,
            desired=decision.desired,
            recommendations=recent_recommendations(recommendations, now, policy.scale_in_stabilization_seconds),
            last_reason=decision.reason,
            last_message=decision.message,
            last_decision_at=now,
            last_scaling_at=now if decision.changed else state.last_scaling_at,
            last_scale_out_at=scale_out_at(state, decision, now),
            panic=decision.panic,
            panic_held=panic_held(state, decision),
            refresh=step.refresh,
            reports=reports,
        )
        # Remember the decision before acting: if we crash mid-action, the next run converges to it.
        self._store.save_decision(new_state)
        if step.event:
            self._record_refresh(step, trigger.cause, decision, now)

        version = launch_version(self.settings.launch_template_version, step.refresh)
        result = self._executor.apply(actions, instances, version) if not actions.empty else Result()
        self._record(trigger, decision, snapshot, actions, result, now, step.refresh)
        self._emit(decision, snapshot, now, step.refresh)
        # Not "message": logging refuses extra keys that name LogRecord attributes (KeyError).
        logger.info(
            "decision",
            extra={
                "cause": trigger.cause,
                "reason": decision.reason,
                "desired": decision.desired,
                "previous": decision.previous,
                "explanation": decision.message,
                "plan": actions.summary(),
                "result": result.to_json(),
            },
        )
        return Outcome("acted", decision.reason, decision, actions, result, step)

    # --- rolling replacement -----------------------------------------------------------------
    def _refresh_and_plan(
        self,
        refresh: Refresh | None,
        instances: Sequence[Instance],
        desired: int,
        now: datetime,
        alarm_states: Mapping[str, str] | None = None,
    ) -> tuple[Step, Plan]:
        """Start a refresh when a deploy calls for one, move the active one on, and plan with
        it; a refresh that fails or rolls back in this run is planned with its new target.
        ``alarm_states``: what this run read of the alarms, when it read the refresh's too."""
        configured = self.settings.launch_template_version
        lifetime = self.settings.max_instance_lifetime_seconds
        defaults = self.settings.refresh_preferences()
        started: Step | None = None
        if deploy_pending(configured, refresh, instances):
            previous = refresh.target_version if refresh else majority_version(instances, configured)
            fresh = new_refresh(configured, previous, defaults, "deploy", instances, now)
            started = Step(fresh, "refresh-started", started_message(fresh))
            refresh = fresh
        actions = plan(instances, desired, self._limits, now, rollout_of(refresh, configured, lifetime, defaults))
        if refresh is None or not refresh.active:
            return started or Step(refresh), actions
        alarms = refresh.preferences.alarm_names
        if alarms and (alarm_states is None or not set(alarms) <= set(alarm_states)):
            alarm_states = self._signals.alarm_states(list(alarms))
        in_alarm = [n for n in alarms if (alarm_states or {}).get(n) == "ALARM"]
        failed = failed_replacements(instances, actions.gave_up, refresh.target_version)
        # The pool is part of the fleet: a refresh ends when its seats are held again.
        refilling = bool(actions.launch_warming) or any(
            i.alive and i.lifecycle is Lifecycle.WARMING and i.instance_id not in actions.terminate for i in instances
        )
        step = advance(refresh, instances, now, alarms_in_alarm=in_alarm, failed=failed, refilling=refilling)
        if step.refresh != refresh:
            actions = plan(
                instances, desired, self._limits, now, rollout_of(step.refresh, configured, lifetime, defaults)
            )
        if started is not None and step.event is None:
            step = replace(started, refresh=step.refresh)
        elif started is not None:
            step = replace(step, message=f"{started.message}; {step.message}")
        return step, actions

    def _record_refresh(self, step: Step, cause: str, decision: Decision, now: datetime) -> None:
        assert step.refresh is not None and step.event is not None
        self._store.record(
            Activity(
                activity_id=uuid.uuid4().hex[:12],
                at=now,
                cause=cause,
                reason=step.event,
                from_desired=decision.previous,
                to_desired=decision.desired,
                status="Successful",
                details={"message": step.message, "refresh": step.refresh.to_json()},
            )
        )
        logger.info(step.event, extra={"explanation": step.message, "refresh": step.refresh.to_json()})

    def change_refresh(
        self,
        change: Callable[[Refresh | None, FleetState, list[Instance], datetime], Step],
        cause: str = MANUAL,
        dry_run: bool = False,
    ) -> Outcome:
        """Apply an operator's change to the refresh (start, cancel, rollback) under the lease,
        then run one iteration so its first step is taken at once."""
        if dry_run:
            now = self.clock.now()
            state = self._store.load()
            instances = self.instances()
            step = change(state.refresh, state, instances, now)
            outcome = self._run_locked(Trigger(cause=cause, dry_run=True, ignore_suspend=True), refresh=step.refresh)
            return replace(outcome, refresh=step)
        with self.lease(must_run=True):
            now = self.clock.now()
            state = self._store.load()
            instances = self.instances()
            step = change(state.refresh, state, instances, now)
            if step.refresh is not None and step.event is not None:
                self._store.save_refresh(step.refresh)
                desired = current_desired(state, FleetCounts.of(instances).capacity, self.runtime.scaling_policy())
                self._record_refresh(step, cause, Decision(desired, desired, MANUAL, step.message), now)
            outcome = self._run_locked(Trigger(cause=cause))
            return replace(outcome, refresh=step)

    def _record(
        self,
        trigger: Trigger,
        decision: Decision,
        snapshot: Snapshot,
        actions: Plan,
        result: Result,
        now: datetime,
        refresh: Refresh | None = None,
    ) -> None:
        touched = [
            *result.started,
            *result.reclaimed,
            *result.launched,
            *result.drained,
            *result.stopped,
            *result.terminated,
            *result.warming,
        ]
        # A panic mode that starts or ends is history even when the capacity stays.
        panic_turned = (decision.panic is None) != (snapshot.state.panic is None)
        quiet = not touched and not result.failures and not result.capacity_errors
        if not decision.changed and quiet and not panic_turned:
            return
        read = decision.signals
        if read is None:  # a decision that did not read them (manual, a twin baseline)
            read = tuple(signal_recommendations(snapshot, self.runtime.scaling_policy(), decision.previous, now))
        signals = {s.name: {"up": s.up_demand, "down": s.down_demand, "target": s.target} for s in read}
        details: dict[str, object] = {
            "message": decision.message,
            "signals": signals,
            "in_service": snapshot.in_service,
            "booting": snapshot.booting,
            "pool": snapshot.pool,
            **{k: v for k, v in result.to_json().items() if k != "registered"},
            **trigger.details,
        }
        if trigger.event_time:
            details["alarm_time"] = trigger.event_time.isoformat()
        replacing = {*actions.retire, *actions.discard}
        if replacing:
            # The replacements' cause: the refresh (and its target) or the lifetime limit.
            details["replaced"] = {
                "retired": list(actions.retire),
                "discarded": list(actions.discard),
                "refresh": refresh.refresh_id if refresh is not None and refresh.replacing else None,
                "target_version": refresh.target_version if refresh is not None else None,
                "versions": {i.instance_id: i.version for i in snapshot.instances if i.instance_id in replacing},
            }
        if actions.gave_up:
            details["gave_up"] = list(actions.gave_up)
        quiet_reason = "refresh" if replacing else "reconcile"
        self._store.record(
            Activity(
                activity_id=uuid.uuid4().hex[:12],
                at=now,
                cause=trigger.cause,
                reason=decision.reason if decision.changed or panic_turned else quiet_reason,
                from_desired=decision.previous,
                to_desired=decision.desired,
                status=result.status,
                instance_ids=tuple(touched),
                details=details,
            )
        )

    def _emit(self, decision: Decision, snapshot: Snapshot, now: datetime, refresh: Refresh | None = None) -> None:
        sink = self.runtime.metrics
        if sink is None:
            return
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        from autoscaler.observability import METRICS_SERVICE

        sink.add_dimension(name="Fleet", value=self.settings.fleet_name)
        sink.add_metric(name="Desired", unit=MetricUnit.Count, value=decision.desired)
        sink.add_metric(name="InService", unit=MetricUnit.Count, value=snapshot.in_service)
        sink.add_metric(name="Booting", unit=MetricUnit.Count, value=snapshot.booting)
        sink.add_metric(name="Pool", unit=MetricUnit.Count, value=snapshot.pool)
        # Old vs new launch-template version, in service and in the pool (the refresh's progress).
        rollout = rollout_of(
            refresh, self.settings.launch_template_version, self.settings.max_instance_lifetime_seconds
        )
        versions = progress(snapshot.instances, rollout, now)
        sink.add_metric(name="InServiceNewVersion", unit=MetricUnit.Count, value=versions.new_in_service)
        sink.add_metric(name="InServiceOldVersion", unit=MetricUnit.Count, value=versions.old_in_service)
        sink.add_metric(name="PoolNewVersion", unit=MetricUnit.Count, value=versions.new_pool)
        sink.add_metric(name="PoolOldVersion", unit=MetricUnit.Count, value=versions.old_pool)
        sink.add_metric(name="Decisions", unit=MetricUnit.Count, value=1)
        latency_ms = (self.clock.now() - now).total_seconds() * 1000
        sink.add_metric(name="DecisionLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        # Decisions by reason need their own dimension set, hence a metric flushed on its own
        # (not single_metric: it adds the service dimension and ignores POWERTOOLS_METRICS_DISABLED).
        by_reason = EphemeralMetrics(namespace=sink.namespace, service=METRICS_SERVICE)
        by_reason.add_dimension(name="Fleet", value=self.settings.fleet_name)
        by_reason.add_dimension(name="Reason", value=decision.reason)
        by_reason.add_metric(name="DecisionsByReason", unit=MetricUnit.Count, value=1)
        by_reason.flush_metrics()


def started_message(refresh: Refresh) -> str:
    p = refresh.preferences
    return (
        f"{refresh.refresh_id} ({refresh.cause}): version {refresh.previous_version} -> {refresh.target_version}, "
        f"{refresh.to_replace} instance(s) to replace, min healthy {p.min_healthy_percent} %, max surge {p.surge_text}"
    )
