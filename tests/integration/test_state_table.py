"""docs/contracts.md's state-table rows are the items the code writes: their keys, with the
fleet's name exactly where the doc says <fleet>."""

from __future__ import annotations

import re

import pytest
from autoscaler import entrypoints
from autoscaler.model import Direction

from tests.support.events import alarm_event
from tests.support.lambda_env import ROOT

pytestmark = pytest.mark.integration


def _documented_keys() -> list[tuple[re.Pattern[str], re.Pattern[str]]]:
    text = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    section = text.split("## State table", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", section, re.MULTILINE)
    assert rows, "no rows in the state table section"

    def pattern(key: str) -> re.Pattern[str]:
        # <fleet> is the fleet's name (\0 in the item's key below); any other placeholder is not.
        parts = re.split(r"(<[^>]+>)", key)
        return re.compile(
            "".join("\0" if p == "<fleet>" else "[^\0]+" if p.startswith("<") else re.escape(p) for p in parts)
        )

    return [(pattern(pk), pattern(sk)) for pk, sk in rows]


def test_every_item_the_code_writes_is_documented(fleet):
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    fleet.knobs.cpu = 90.0
    fleet.knobs.alarms["fleet-cpu-high"] = "ALARM"
    entrypoints.handle_alarm_event(alarm_event("fleet-cpu-high", fleet.clock.now()), fleet.runtime, Direction.OUT)
    entrypoints.set_suspended(fleet.runtime, True)

    items = fleet.runtime.clients.dynamodb.scan(TableName=fleet.settings.table_name)["Items"]
    documented = _documented_keys()
    for item in items:
        pk = item["pk"]["S"].replace(fleet.settings.fleet_name, "\0")
        sk = item["sk"]["S"]
        assert any(p.fullmatch(pk) and s.fullmatch(sk) for p, s in documented), (item["pk"]["S"], sk)
    assert {item["pk"]["S"].split("#")[0] for item in items} == {"FLEET", "IDEMPOTENCY"}


def test_panic_mode_survives_between_invocations_and_its_end_is_stored(fleet):
    """Panic is state: a later invocation (another execution environment) must see it, and a
    decision out of panic must clear it in the table."""
    from dataclasses import replace
    from datetime import timedelta

    from autoscaler.model import FleetState, Panic

    store = fleet.store
    now = fleet.clock.now()
    panic = Panic(now - timedelta(seconds=40), now - timedelta(seconds=10))
    store.save_decision(FleetState(desired=4, panic=panic, last_decision_at=now))
    assert store.load().panic == panic
    store.save_decision(replace(store.load(), panic=replace(panic, added=3)))
    assert store.load().panic == replace(panic, added=3)
    store.save_decision(replace(store.load(), panic=None, panic_held=1))
    assert store.load().panic is None
    assert store.load().panic_held == 1  # decide's release after the panic
    assert store.load().desired == 4
    store.save_decision(replace(store.load(), panic_held=0))
    assert store.load().panic_held == 0


def test_the_last_scale_out_is_stored_and_cleared(fleet):
    """decide's follow-through window reads it in a later invocation; a scale-in clears it."""
    from dataclasses import replace

    from autoscaler.model import FleetState

    store = fleet.store
    now = fleet.clock.now()
    store.save_decision(FleetState(desired=3, last_scale_out_at=now, last_decision_at=now))
    assert store.load().last_scale_out_at == now
    store.save_decision(replace(store.load(), last_scale_out_at=None))
    assert store.load().last_scale_out_at is None
