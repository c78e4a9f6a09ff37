"""Load scenarios: parse and validate a scenario YAML file, naming the field and line of any error."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from simulator.params import ModelParams, bounds

ACTIONS = ("fail_instance", "capacity_error", "deploy")
EVENT_KEYS = {
    "fail_instance": {"at", "action", "seconds"},
    "capacity_error": {"at", "action", "seconds"},
    # A `sam deploy` that changes the workers: a new launch template version (docs/simulator.md).
    "deploy": {"at", "action", "install_seconds", "healthy"},
}


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file, line and field."""


@dataclass(frozen=True)
class Stage:
    index: int
    start: float
    duration: float
    clients: int | None = None
    think: float = 1.0
    rate: float | None = None
    rate_end: float | None = None  # open-loop rate at the stage end (linear ramp), default = rate
    expect_instances: tuple[int, int] | None = None  # inclusive range; a single value gives (n, n)
    expect_within: float | None = None  # seconds from stage start until the expectation first holds
    name: str = ""

    @property
    def end(self) -> float:
        return self.start + self.duration

    def rate_at(self, t: float) -> float:
        """Open-loop arrival rate at scenario time ``t`` inside this stage."""
        if self.rate is None:
            return 0.0
        end = self.rate if self.rate_end is None else self.rate_end
        frac = min(1.0, max(0.0, (t - self.start) / self.duration))
        return self.rate + (end - self.rate) * frac

    @property
    def load(self) -> float:
        return float(self.clients) if self.clients is not None else float(self.rate or 0.0)

    def load_at(self, t: float) -> float:
        """The clients, or the arrival rate at scenario time ``t`` (a ramp's, where it has reached)."""
        return float(self.clients) if self.clients is not None else self.rate_at(t)


@dataclass(frozen=True)
class Event:
    at: float
    action: str
    seconds: float = 0.0
    # deploy: the new version's install time at boot, (low, high) per boot (None: as before),
    # and whether its worker ever answers /ping.
    install_seconds: tuple[float, float] | None = None
    healthy: bool = True


@dataclass(frozen=True)
class Expectations:
    """Scenario-wide targets checked after the run (all optional)."""

    scale_out_actions: int | None = None
    scale_in_actions: int | None = None
    max_flaps: int | None = None
    latency_p95_max: float | None = None
    latency_grace_seconds: float = 120.0
    # A flap: an action reversed within this many seconds. Fixed by the scenario, not by the
    # configuration under test: a window taken from the template's stabilization would let a
    # shorter stabilization hide its own flaps.
    flap_window_seconds: float = 180.0
    # Per deploy event, over its refresh window (simulator/refresh.py).
    expect_all_new_within: float | None = None  # seconds from the deploy to every instance on it
    expect_failed_requests: int | None = None  # at most this many failed requests
    expect_min_headroom: int | None = None  # in service - desired never below this
    expect_rolled_back: bool | None = None  # the fleet is back on the version before the deploy
    # Extra instance-seconds at most this many instances x the refresh window (the run without
    # the deploy is made to measure them).
    expect_extra_instances: float | None = None

    @property
    def deploy_checks(self) -> tuple[str, ...]:
        return tuple(name for name in DEPLOY_EXPECT_KEYS if getattr(self, name) is not None)


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    stages: tuple[Stage, ...]
    events: tuple[Event, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    model: dict[str, float | list[float]] = field(default_factory=dict)  # a number or [low, high]
    expect: Expectations = field(default_factory=Expectations)
    warmup: float = 600.0
    path: str = ""
    # Each instance's timings from a stream of its own (``Ec2Model.own_stream``), so two policies'
    # runs on one seed compare run for run: ``--paired-draws``, not the scenario file.
    paired_draws: bool = False

    @property
    def duration(self) -> float:
        return self.stages[-1].end if self.stages else 0.0

    def stage_at(self, t: float) -> Stage | None:
        for stage in self.stages:
            if stage.start <= t < stage.end:
                return stage
        return None


class _Loader(yaml.SafeLoader):
    """Safe loader that keeps node marks so errors can name lines."""


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, node: yaml.Node | None, field_name: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.path}:{_line(node)}: {field_name}: {message}")

    def mapping(self, node: yaml.Node, field_name: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field_name, "expected a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise self.fail(key, field_name, "keys must be plain strings")
            if key.value in out:
                raise self.fail(key, f"{field_name}.{key.value}", "duplicate key")
            out[key.value] = (key, value)
        return out

    def sequence(self, node: yaml.Node, field_name: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field_name, "expected a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, field_name: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, field_name, "expected a single value")
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)

    def number(self, node: yaml.Node, field_name: str, *, minimum: float = 0.0, strict: bool = False) -> float:
        value = self.scalar(node, field_name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(node, field_name, f"expected a number, got {value!r}")
        if value < minimum or (strict and value == minimum):
            sign = ">" if strict else ">="
            raise self.fail(node, field_name, f"must be {sign} {minimum:g}, got {value!r}")
        return float(value)

    def integer(self, node: yaml.Node, field_name: str, *, minimum: int = 0) -> int:
        value = self.scalar(node, field_name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(node, field_name, f"expected an integer, got {value!r}")
        if value < minimum:
            raise self.fail(node, field_name, f"must be >= {minimum}, got {value!r}")
        return value

    def boolean(self, node: yaml.Node, field_name: str) -> bool:
        value = self.scalar(node, field_name)
        if not isinstance(value, bool):
            raise self.fail(node, field_name, f"expected true or false, got {value!r}")
        return value

    def span(self, node: yaml.Node, field_name: str) -> tuple[float, float]:
        """A number (pinned) or ``[low, high]``, each >= 0."""
        if isinstance(node, yaml.SequenceNode):
            items = self.sequence(node, field_name)
            if len(items) != 2:
                raise self.fail(node, field_name, f"a range is [low, high], got {len(items)} values")
            low = self.number(items[0], f"{field_name}[0]")
            high = self.number(items[1], f"{field_name}[1]")
            if high < low:
                raise self.fail(node, field_name, f"a range is [low, high] with low <= high, got [{low:g}, {high:g}]")
            return low, high
        value = self.number(node, field_name)
        return value, value

    def string(self, node: yaml.Node, field_name: str) -> str:
        value = self.scalar(node, field_name)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(node, field_name, f"expected a string, got {value!r}")
        return str(value)

    def check_keys(self, fields_: dict[str, tuple[yaml.Node, yaml.Node]], allowed: set[str], where: str) -> None:
        for key, (key_node, _) in fields_.items():
            if key not in allowed:
                names = ", ".join(sorted(allowed))
                raise self.fail(key_node, f"{where}{key}", f"unknown field (allowed: {names})")


STAGE_KEYS = {"duration", "clients", "think", "rate", "rate_end", "expect_instances", "expect_within", "name"}
TOP_KEYS = {"name", "seed", "stages", "events", "parameters", "model", "expect", "warmup", "description"}
DEPLOY_EXPECT_KEYS = (
    "expect_all_new_within",
    "expect_failed_requests",
    "expect_min_headroom",
    "expect_rolled_back",
    "expect_extra_instances",
)
EXPECT_KEYS = {
    "scale_out_actions",
    "scale_in_actions",
    "max_flaps",
    "latency_p95_max",
    "latency_grace_seconds",
    "flap_window_seconds",
    *DEPLOY_EXPECT_KEYS,
}


def load_scenario(path: str | Path) -> Scenario:
    text = Path(path).read_text(encoding="utf-8")
    return parse_scenario(text, str(path))


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    reader = _Reader(path)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise ScenarioError(f"{path}:{line}: <yaml>: {getattr(exc, 'problem', exc)}") from exc
    if root is None:
        raise ScenarioError(f"{path}:1: <root>: the file is empty")
    top = reader.mapping(root, "<root>")
    reader.check_keys(top, TOP_KEYS, "")
    if "stages" not in top:
        raise reader.fail(root, "stages", "required field is missing")
    name = reader.string(top["name"][1], "name") if "name" in top else Path(path).stem
    seed = reader.integer(top["seed"][1], "seed") if "seed" in top else 1
    warmup = reader.number(top["warmup"][1], "warmup") if "warmup" in top else 600.0
    if warmup % 60:
        raise reader.fail(top["warmup"][1], "warmup", "must be a multiple of 60 seconds")

    stages: list[Stage] = []
    start = 0.0
    stage_nodes = reader.sequence(top["stages"][1], "stages")
    if not stage_nodes:
        raise reader.fail(top["stages"][1], "stages", "needs at least one stage")
    for i, node in enumerate(stage_nodes):
        stage = _stage(reader, node, i, start)
        stages.append(stage)
        start = stage.end

    events: list[Event] = []
    if "events" in top:
        for i, node in enumerate(reader.sequence(top["events"][1], "events")):
            events.append(_event(reader, node, f"events[{i}]", stages[-1].end))

    parameters: dict[str, str] = {}
    if "parameters" in top:
        for key, (_, value) in reader.mapping(top["parameters"][1], "parameters").items():
            parameters[key] = reader.string(value, f"parameters.{key}")
    model: dict[str, float | list[float]] = {}
    if "model" in top:
        known = {f.name for f in fields(ModelParams)}
        for key, (key_node, value) in reader.mapping(top["model"][1], "model").items():
            if key not in known:
                raise reader.fail(
                    key_node, f"model.{key}", f"unknown model parameter (known: {', '.join(sorted(known))})"
                )
            raw: float | list[float]
            if isinstance(value, yaml.SequenceNode):
                items = reader.sequence(value, f"model.{key}")
                raw = [reader.number(item, f"model.{key}[{n}]") for n, item in enumerate(items)]
            else:
                raw = reader.number(value, f"model.{key}")
            try:
                bounds(key, raw)  # the rule the run applies, checked here for the line number
            except ValueError as exc:
                raise reader.fail(value, f"model.{key}", str(exc).removeprefix(f"model.{key}: ")) from None
            model[key] = raw
    expect = Expectations()
    if "expect" in top:
        fields_ = reader.mapping(top["expect"][1], "expect")
        reader.check_keys(fields_, EXPECT_KEYS, "expect.")
        values: dict[str, Any] = {}
        for key, (_, value) in fields_.items():
            if key in {"scale_out_actions", "scale_in_actions", "max_flaps", "expect_failed_requests"}:
                values[key] = reader.integer(value, f"expect.{key}")
            elif key == "expect_min_headroom":
                values[key] = reader.integer(value, f"expect.{key}", minimum=-sys.maxsize)
            elif key == "expect_rolled_back":
                values[key] = reader.boolean(value, f"expect.{key}")
            else:
                values[key] = reader.number(value, f"expect.{key}")
        expect = Expectations(**values)
        if expect.deploy_checks and not any(e.action == "deploy" for e in events):
            key_node = fields_[expect.deploy_checks[0]][0]
            raise reader.fail(key_node, f"expect.{expect.deploy_checks[0]}", "needs a deploy event under events:")
    return Scenario(
        name=name,
        seed=seed,
        stages=tuple(stages),
        events=tuple(events),
        parameters=parameters,
        model=model,
        expect=expect,
        warmup=warmup,
        path=path,
    )


def _event(reader: _Reader, node: yaml.Node, where: str, end: float) -> Event:
    fields_ = reader.mapping(node, where)
    for required in ("at", "action"):
        if required not in fields_:
            raise reader.fail(node, f"{where}.{required}", "required field is missing")
    action = reader.string(fields_["action"][1], f"{where}.action")
    if action not in ACTIONS:
        raise reader.fail(fields_["action"][1], f"{where}.action", f"must be one of {', '.join(ACTIONS)}")
    allowed = EVENT_KEYS[action]
    for key, (key_node, _) in fields_.items():
        if key not in allowed:
            names = ", ".join(sorted(allowed))
            raise reader.fail(key_node, f"{where}.{key}", f"unknown field for action {action} (allowed: {names})")
    at = reader.number(fields_["at"][1], f"{where}.at")
    if action == "deploy":
        if at >= end:
            message = f"must be before the scenario's end ({end:g} s), got {at:g}"
            raise reader.fail(fields_["at"][1], f"{where}.at", message)
        install = None
        if "install_seconds" in fields_:
            install = reader.span(fields_["install_seconds"][1], f"{where}.install_seconds")
        healthy = reader.boolean(fields_["healthy"][1], f"{where}.healthy") if "healthy" in fields_ else True
        return Event(at, action, install_seconds=install, healthy=healthy)
    seconds = reader.number(fields_["seconds"][1], f"{where}.seconds") if "seconds" in fields_ else 0.0
    if action == "capacity_error" and seconds <= 0:
        raise reader.fail(node, f"{where}.seconds", "capacity_error needs seconds > 0")
    return Event(at, action, seconds)


def _stage(reader: _Reader, node: yaml.Node, i: int, start: float) -> Stage:
    where = f"stages[{i}]"
    fields_ = reader.mapping(node, where)
    reader.check_keys(fields_, STAGE_KEYS, f"{where}.")
    if "duration" not in fields_:
        raise reader.fail(node, f"{where}.duration", "required field is missing")
    duration = reader.number(fields_["duration"][1], f"{where}.duration", strict=True)
    has_clients, has_rate = "clients" in fields_, "rate" in fields_
    if has_clients == has_rate:
        raise reader.fail(node, f"{where}.clients", "give exactly one of clients (closed loop) or rate (open loop)")
    clients = reader.integer(fields_["clients"][1], f"{where}.clients") if has_clients else None
    rate = reader.number(fields_["rate"][1], f"{where}.rate") if has_rate else None
    rate_end = None
    if "rate_end" in fields_:
        if not has_rate:
            raise reader.fail(fields_["rate_end"][0], f"{where}.rate_end", "only with rate")
        rate_end = reader.number(fields_["rate_end"][1], f"{where}.rate_end")
    think = reader.number(fields_["think"][1], f"{where}.think") if "think" in fields_ else 1.0
    expect: tuple[int, int] | None = None
    if "expect_instances" in fields_:
        value_node = fields_["expect_instances"][1]
        if isinstance(value_node, yaml.SequenceNode):
            items = reader.sequence(value_node, f"{where}.expect_instances")
            if len(items) != 2:
                raise reader.fail(value_node, f"{where}.expect_instances", "a range is [low, high]")
            low = reader.integer(items[0], f"{where}.expect_instances[0]")
            high = reader.integer(items[1], f"{where}.expect_instances[1]")
            if high < low:
                raise reader.fail(value_node, f"{where}.expect_instances", "high must be >= low")
            expect = (low, high)
        else:
            n = reader.integer(value_node, f"{where}.expect_instances")
            expect = (n, n)
    within = None
    if "expect_within" in fields_:
        within = reader.number(fields_["expect_within"][1], f"{where}.expect_within")
        if expect is None:
            raise reader.fail(fields_["expect_within"][0], f"{where}.expect_within", "needs expect_instances")
    name = reader.string(fields_["name"][1], f"{where}.name") if "name" in fields_ else str(i + 1)
    return Stage(
        index=i + 1,
        start=start,
        duration=duration,
        clients=clients,
        think=think,
        rate=rate,
        rate_end=rate_end,
        expect_instances=expect,
        expect_within=within,
        name=name,
    )
