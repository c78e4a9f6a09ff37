"""One rule for what serves, boots and waits in the pool: decide, fleetctl and the twin agree."""

from __future__ import annotations

import io
import json

import pytest
from autoscaler import entrypoints
from autoscaler.controller import Controller
from autoscaler.model import FleetCounts, Snapshot

from fleetctl.cli import build_parser
from fleetctl.commands import scale
from fleetctl.context import Context
from fleetctl.render import Renderer

pytestmark = pytest.mark.integration


def _two_serving_one_of_them_unhealthy(fleet) -> None:
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    fleet.clock.advance(30)
    entrypoints.reconcile(fleet.runtime)  # 1 in service, 1 in the pool
    entrypoints.set_capacity(fleet.runtime, 2)
    serving = [i["InstanceId"] for i in fleet.instances() if i["State"]["Name"] == "running"]
    fleet.knobs.health = {serving[0]: "healthy", serving[1]: "unhealthy"}
    # The state table lost its item (a new table, a restore): counting decides the capacity.
    key = {"pk": {"S": f"FLEET#{fleet.settings.fleet_name}"}, "sk": {"S": "STATE"}}
    fleet.runtime.clients.dynamodb.delete_item(TableName=fleet.settings.table_name, Key=key)
    assert fleet.store.load().desired is None


def test_an_unhealthy_instance_is_capacity_on_its_way_everywhere(fleet):
    _two_serving_one_of_them_unhealthy(fleet)
    controller = Controller(fleet.runtime)
    instances = controller.instances()
    counts = FleetCounts.of(instances)
    assert (counts.in_service, counts.booting, counts.capacity) == (1, 1, 2)
    assert Snapshot(tuple(instances), controller.state()).capacity == 2  # the same rule, not a copy of it
    assert controller.desired_now() == 2


def test_fleetctl_scale_out_steps_from_the_capacity_decide_counts(fleet):
    _two_serving_one_of_them_unhealthy(fleet)
    ctx = Context("fleet-stack")
    ctx.__dict__["runtime"] = fleet.runtime  # the stack's runtime, as fleetctl builds it
    args = build_parser().parse_args(["--stack", "fleet-stack", "--output", "json", "scale", "out", "--dry-run"])
    stream = io.StringIO()
    assert scale(ctx, args, Renderer(stream)) == 0
    assert json.loads(stream.getvalue())["asked"] == 3


def test_a_dry_run_plans_what_the_real_run_then_does_and_changes_nothing(fleet):
    entrypoints.create_fleet(fleet.runtime)
    fleet.mark_ready()
    fleet.clock.advance(30)
    entrypoints.reconcile(fleet.runtime)
    before = (fleet.lifecycle_counts(), fleet.store.load(), fleet.store.activities())
    assert fleet.store.acquire_lease("someone-else", fleet.clock.now(), 60)  # a dry run reads only
    preview = entrypoints.set_capacity(fleet.runtime, 3, dry_run=True)
    assert (fleet.lifecycle_counts(), fleet.store.load(), fleet.store.activities()) == before
    fleet.store.release_lease("someone-else")
    done = entrypoints.set_capacity(fleet.runtime, 3)
    assert preview["status"] == "dry-run" and done["status"] == "acted"
    assert (preview["previous"], preview["desired"]) == (done["previous"], done["desired"]) == (1, 3)
    assert preview["plan"] == done["plan"]
