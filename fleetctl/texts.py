"""A refresh in words: the lines ``fleetctl status`` and ``fleetctl refresh`` print.

Every function takes the plain data of ``autoscaler.refresh.report`` (``refresh_status``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.refresh import Preferences

STATUS_STYLES = {
    "InProgress": "yellow",
    "Paused": "yellow",
    "RollingBack": "magenta",
    "Successful": "green",
    "Cancelled": "dim",
    "Failed": "red",
    "RolledBack": "red",
}


def refresh_style(status: str) -> str | None:
    return STATUS_STYLES.get(status)


def version_line(report: Mapping[str, Any]) -> str:
    """The version new instances get, and why it is not the configured one when it is not."""
    configured, launching = report["configured_version"], report["launch_version"]
    refresh = report.get("refresh")
    if report.get("deploy_pending"):
        now = launching if launching == configured else f"{launching}, the stack configures {configured}"
        return f"{now} (the next reconcile, within a minute, starts a refresh to version {configured})"
    if launching != configured and refresh is not None:
        return (
            f"{launching} (pinned back by {refresh['refresh_id']}, {refresh['status']}; the stack configures "
            f"{configured}: `fleetctl refresh start` tries it again, a deploy of another version moves on)"
        )
    return str(launching)


def versions(refresh: Mapping[str, Any]) -> str:
    """``previous -> target`` (``-`` for none: a fleet's first refresh may have no previous version)."""
    return f"{refresh.get('previous_version') or '-'} -> {refresh['target_version']}"


def progress_line(progress: Mapping[str, Any]) -> str:
    """Old vs new (new: the refresh's target version), in service and in the pool."""
    return (
        f"in service {progress['new_in_service']} new / {progress['old_in_service']} old, "
        f"pool {progress['new_pool']} new / {progress['old_pool']} old; "
        f"{progress['percent']} % on version {progress['target_version']}, {progress['remaining']} to replace"
    )


def refresh_line(report: Mapping[str, Any]) -> str:
    """One line: the latest refresh, its versions and its progress."""
    refresh = report["refresh"]
    head = f"{refresh['refresh_id']} {refresh['status']}, version {versions(refresh)}"
    if refresh.get("paused_until"):
        head += f" (paused until {refresh['paused_until']})"
    return f"{head}: {progress_line(report['progress'])}"


def preferences_line(preferences: Mapping[str, Any]) -> str:
    parts = [
        f"min healthy {preferences['min_healthy_percent']} %",
        f"max surge {Preferences.from_json(preferences).surge_text}",
        f"warm-up {preferences['warmup_seconds']} s",
        "skip matching" if preferences.get("skip_matching", True) else "replace every instance once",
        "auto rollback" if preferences.get("auto_rollback", True) else "no auto rollback",
    ]
    if preferences.get("alarm_names"):
        parts.append(f"alarms {', '.join(preferences['alarm_names'])}")
    return ", ".join(parts)


def checkpoints_line(refresh: Mapping[str, Any]) -> str:
    preferences = refresh["preferences"]
    marks = preferences.get("checkpoints") or []
    if not marks:
        return "none"
    listed = ", ".join(f"{m} %" for m in marks)
    return f"{listed} (pause {preferences['checkpoint_delay_seconds']} s each); {refresh['checkpoints_passed']} passed"


def refresh_fields(report: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``fleetctl refresh status``: label / value pairs."""
    refresh = report.get("refresh")
    fields: list[tuple[str, Any]] = [("Version", version_line(report))]
    if refresh is None:
        return [("Refresh", "none yet"), *fields, ("Progress", progress_line(report["progress"]))]
    fields = [
        ("Refresh", refresh["refresh_id"]),
        ("Status", refresh["status"]),
        ("Cause", refresh["cause"]),
        ("Versions", versions(refresh)),
        *fields,
        ("Preferences", preferences_line(refresh["preferences"])),
        ("Checkpoints", checkpoints_line(refresh)),
    ]
    if refresh.get("paused_until"):
        fields.append(("Paused until", refresh["paused_until"]))
    if refresh.get("rejected_version"):
        rejected = f"version {refresh['rejected_version']} (rolled back; a deploy of it starts no refresh)"
        fields.append(("Rejected", rejected))
    if refresh.get("failed_replacements"):
        fields.append(("Failed", ", ".join(refresh["failed_replacements"])))
    fields += [
        ("Status reason", refresh.get("status_reason") or "-"),
        ("Started", refresh["started_at"]),
        ("Updated", refresh["updated_at"]),
        ("Progress", progress_line(report["progress"])),
    ]
    return fields
