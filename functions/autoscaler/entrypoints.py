"""What each function does, independent of Lambda: the handlers, the simulator and fleetctl call these."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from autoscaler.controller import Controller, Trigger, started_message
from autoscaler.errors import LeaseBusyError, RefreshError
from autoscaler.model import Direction, FleetState, Instance
from autoscaler.observability import logger
from autoscaler.refresh import (
    Refresh,
    RefreshStatus,
    Step,
    cancel,
    majority_version,
    new_refresh,
    report,
    rollback,
)
from autoscaler.runtime import Runtime

if TYPE_CHECKING:
    from autoscaler.intake import AlarmNotice, HostDemandNotice

IRRELEVANT_TRANSITION = "irrelevant-transition"


def handle_alarm_event(event: Any, runtime: Runtime, direction: Direction, context: Any = None) -> dict[str, Any]:
    """Scale-out / scale-in entry: acknowledge bad input with a reason, act once per transition
    and on each host report that may be trusted."""
    # pydantic models are built at import (~0.1 s): only the alarm functions pay for them.
    from autoscaler.intake import HostDemandNotice, Rejected, parse_event

    results = []
    controller = Controller(runtime)  # no AWS call until used; one for every item of the event
    for item in parse_event(event):
        if isinstance(item, Rejected):
            logger.warning(
                "ignored event",
                extra={"reason": item.reason, "detail": item.detail, "message_id": item.message_id},
            )
            results.append({"status": "ignored", "reason": item.reason, "detail": item.detail})
            continue
        if isinstance(item, HostDemandNotice):
            results.append(_act_on_report(item, runtime, direction, controller))
            continue
        logger.set_correlation_id(f"{item.alarm_name}@{item.state_change_time.isoformat()}")
        reason = _irrelevance(item, runtime, direction)
        if reason:
            if reason.startswith(IRRELEVANT_TRANSITION):
                # Not in ALARM at this time: a late or retried ALARM from before must not act.
                controller.remember_cleared(item.alarm_name, item.state_change_time)
            logger.info("ignored alarm", extra={"reason": reason, "alarm": item.alarm_name})
            results.append({"status": "ignored", "reason": reason, "alarm": item.alarm_name})
            continue
        results.append(_process_once(item, runtime, direction, context))
    return {"results": results}


def _irrelevance(notice: AlarmNotice, runtime: Runtime, direction: Direction) -> str | None:
    settings = runtime.settings
    mine = settings.scale_out_alarm_names if direction is Direction.OUT else settings.scale_in_alarm_names
    if settings.all_alarm_names and notice.alarm_name not in settings.all_alarm_names:
        return "alarm-of-another-fleet"
    if mine and notice.alarm_name not in mine:
        return "alarm-of-the-other-direction"
    if notice.new_state != "ALARM":
        return f"{IRRELEVANT_TRANSITION} {notice.old_state}->{notice.new_state}"
    return None


def report_irrelevance(notice: HostDemandNotice, runtime: Runtime, direction: Direction) -> str | None:
    """Why a host report must not act, or None. Whether its instance is in service is the
    controller's to check: it reads the instances under the lease."""
    settings = runtime.settings
    if direction is not Direction.OUT:
        return "host-report-to-scale-in"
    if notice.fleet != settings.fleet_name:
        return "report-of-another-fleet"
    # Older than the panic window, its period no longer counts in a panic reading (a redelivery,
    # or Lambda's retry a minute later); as far ahead, the host's clock is wrong.
    age = (runtime.clock.now() - notice.report.at).total_seconds()
    if age > settings.panic_window_seconds:
        return f"stale-report ({age:.0f} s old)"
    if -age > settings.panic_window_seconds:
        return f"report-from-the-future ({-age:.0f} s ahead)"
    return None


def _act_on_report(
    notice: HostDemandNotice, runtime: Runtime, direction: Direction, controller: Controller
) -> dict[str, Any]:
    """A reconcile that also counts the report's datapoints, which CloudWatch may not show yet.

    No idempotency record: a run is level-triggered, so a duplicate delivery only decides again
    on the same fleet; a retried one is stale by then.
    """
    report = notice.report
    logger.set_correlation_id(f"{report.instance_id}@{report.at.isoformat()}")
    reason = report_irrelevance(notice, runtime, direction)
    if reason:
        extra = {"reason": reason, "instance": report.instance_id, "message_id": notice.message_id}
        logger.info("ignored host report", extra=extra)
        return {"status": "ignored", "reason": reason, "instance": report.instance_id}
    trigger = Trigger(
        cause=f"host-report:{report.instance_id}",
        read_alarms=True,
        reports=(report,),
        # The host reports again next period: waiting longer than that gains nothing.
        lease_wait_seconds=float(runtime.settings.cpu_metric_period_seconds),
        details={"report_at": report.at.isoformat(), "report": dict(report.metrics)},
    )
    try:
        outcome = controller.run(trigger)
    except LeaseBusyError:
        logger.info("host report while another run decides", extra={"instance": report.instance_id})
        return {"status": "ignored", "reason": "lease-busy", "instance": report.instance_id}
    return {"instance": report.instance_id, **outcome.to_json()}


def _process_once(notice: AlarmNotice, runtime: Runtime, direction: Direction, context: Any) -> dict[str, Any]:
    """Run the controller under powertools Idempotency keyed on (AlarmName, StateChangeTime).

    A record of a run that raised is deleted, so Lambda's retry runs again; a duplicate
    delivery returns the stored result without acting twice.
    """
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    settings = runtime.settings
    store = DynamoDBPersistenceLayer(
        table_name=settings.table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=f"IDEMPOTENCY#{settings.fleet_name}",
        expiry_attr="ttl",
        boto3_client=runtime.clients.dynamodb,
    )
    config = IdempotencyConfig(expires_after_seconds=settings.idempotency_ttl_seconds)
    if context is not None:
        config.register_lambda_context(context)

    def act(transition: dict[str, str]) -> dict[str, Any]:
        trigger = Trigger(
            cause=notice.alarm_name,
            directions=frozenset({direction}),
            event_time=notice.state_change_time,
            alarm=notice.alarm_name,
            details={"alarm_reason": notice.reason[:300]},
        )
        outcome = Controller(runtime).run(trigger)
        return {"alarm": transition["alarm_name"], **outcome.to_json()}

    once = idempotent_function(data_keyword_argument="transition", persistence_store=store, config=config)(act)
    try:
        result: dict[str, Any] = once(transition=notice.idempotency_data)
    except IdempotencyAlreadyInProgressError:
        # A concurrent delivery of the same transition is acting now. Raising would make Lambda
        # retry this copy and count a function error for nothing: if that run fails, its own
        # retry (its record is deleted) repairs, and the reconcile run follows every minute.
        logger.info("duplicate delivery while the first is running", extra={"alarm": notice.alarm_name})
        return {"status": "ignored", "reason": "in-progress-elsewhere", "alarm": notice.alarm_name}
    return result


def reconcile(runtime: Runtime) -> dict[str, Any]:
    """The every-minute run: re-evaluate while scaling alarms stay in ALARM, finish pending work."""
    trigger = Trigger(cause="schedule", must_run=False, read_alarms=True)
    return Controller(runtime).run(trigger).to_json()


def set_capacity(runtime: Runtime, desired: int, cause: str = "manual", dry_run: bool = False) -> dict[str, Any]:
    """Manual override through the same lease; min and max still hold. ``dry_run``: the same
    path up to the plan, which is returned instead of carried out."""
    trigger = Trigger(cause=cause, override_desired=desired, ignore_suspend=True, dry_run=dry_run)
    return Controller(runtime).run(trigger).to_json()


def set_suspended(runtime: Runtime, suspended: bool, cause: str = "manual") -> None:
    """Pause or resume automatic scaling (maintenance); recorded in the activity history."""
    Controller(runtime).suspend(suspended, cause)


def create_fleet(runtime: Runtime, lease_wait_seconds: float | None = None) -> dict[str, Any]:
    """Custom resource Create/Update: bring the fleet to min size plus the warm pool.

    ``lease_wait_seconds``: how long to wait for a scaling run to give the lease back (default
    ``LEASE_WAIT_SECONDS``); the custom resource waits for most of its own timeout.
    """
    controller = Controller(runtime)
    state = controller.state()
    policy = runtime.scaling_policy()
    desired = state.desired if state.desired is not None else policy.min_size
    if state.desired is None and runtime.settings.suspended_by_default:
        controller.suspend(True)
    trigger = Trigger(
        cause="lifecycle", override_desired=desired, ignore_suspend=True, lease_wait_seconds=lease_wait_seconds
    )
    return controller.run(trigger).to_json()


def delete_fleet(runtime: Runtime, timeout_seconds: float = 600.0) -> dict[str, Any]:
    """Custom resource Delete: suspend scaling, terminate every fleet instance and wait for it,
    so CloudFormation can then delete the security group and the target group.

    A run that read the state before the suspension may still launch: the sweep runs under the
    decision lease, so it starts only once such a run has finished (or its lease expired), and
    every later run sees the suspension. ``LeaseBusyError`` if the lease stays busy throughout.
    """
    controller = Controller(runtime)
    controller.suspend(True)
    return controller.terminate_everything(timeout_seconds)


# --- rolling replacement (fleetctl refresh ...) ------------------------------------------------
def start_refresh(
    runtime: Runtime,
    *,
    min_healthy_percent: int | None = None,
    max_surge: int | str | None = None,
    warmup_seconds: int | None = None,
    checkpoints: tuple[int, ...] | None = None,
    checkpoint_delay_seconds: int | None = None,
    skip_matching: bool | None = None,
    cause: str = "operator",
    dry_run: bool = False,
) -> dict[str, Any]:
    """Start a refresh to the configured launch-template version; preferences not given come
    from the template. ``RefreshError`` if one is active or the preferences are inconsistent."""
    preferences = runtime.settings.refresh_preferences(
        min_healthy_percent=min_healthy_percent,
        max_surge=max_surge,
        warmup_seconds=warmup_seconds,
        checkpoints=checkpoints,
        checkpoint_delay_seconds=checkpoint_delay_seconds,
        skip_matching=skip_matching,
    )
    problems = preferences.problems()
    if problems:
        raise RefreshError("; ".join(problems) + "; nothing was changed")
    configured = runtime.settings.launch_template_version

    def start(current: Refresh | None, _state: FleetState, instances: list[Instance], now: datetime) -> Step:
        if current is not None and current.active:
            raise RefreshError(
                f"{current.refresh_id} is {current.status.value}; cancel it (fleetctl refresh cancel) before "
                f"starting another; nothing was changed"
            )
        if current is None:
            previous = majority_version(instances, configured)
        elif current.target_version == configured:
            previous = current.previous_version
        else:
            previous = current.target_version
        fresh = new_refresh(configured, previous, preferences, cause, instances, now)
        return Step(fresh, "refresh-started", started_message(fresh))

    return Controller(runtime).change_refresh(start, cause=cause, dry_run=dry_run).to_json()


def cancel_refresh(runtime: Runtime, cause: str = "operator") -> dict[str, Any]:
    """Stop replacing; instances already replaced stay (EC2 Auto Scaling's CancelInstanceRefresh)."""

    def stop(current: Refresh | None, _state: FleetState, _instances: list[Instance], now: datetime) -> Step:
        if current is None or not current.active:
            raise RefreshError(f"no refresh in progress ({_describe(current)}); nothing was changed")
        return cancel(current, now)

    return Controller(runtime).change_refresh(stop, cause=cause).to_json()


def rollback_refresh(runtime: Runtime, cause: str = "operator") -> dict[str, Any]:
    """Pin the previous version back and replace every instance of the refresh's version."""

    def back(current: Refresh | None, _state: FleetState, instances: list[Instance], now: datetime) -> Step:
        if current is None or current.previous_version is None:
            raise RefreshError(f"nothing to roll back to ({_describe(current)}); nothing was changed")
        if current.status in {RefreshStatus.ROLLING_BACK, RefreshStatus.ROLLED_BACK}:
            raise RefreshError(
                f"{current.refresh_id} is already {current.status.value} to version {current.target_version}; "
                f"`fleetctl refresh start` deploys version {runtime.settings.launch_template_version} again"
            )
        return rollback(current, instances, now, f"rollback asked by {cause}")

    return Controller(runtime).change_refresh(back, cause=cause).to_json()


def refresh_status(runtime: Runtime) -> dict[str, Any]:
    """The latest refresh and how far the fleet is on its version (``refresh.report``)."""
    controller = Controller(runtime)
    refresh = controller.state().refresh
    settings = runtime.settings
    return report(
        refresh,
        settings.launch_template_version,
        controller.instances(),
        runtime.clock.now(),
        settings.max_instance_lifetime_seconds,
    )


def _describe(refresh: Refresh | None) -> str:
    if refresh is None:
        return "this fleet has had no refresh"
    return f"the latest, {refresh.refresh_id}, is {refresh.status.value}"
