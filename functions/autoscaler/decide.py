"""The scaling decision: a pure function of a fleet snapshot, a policy and the time.

Sizing follows the Kubernetes HPA (see docs/design.md), per signal of the table
(``signals.py``): the signal's total demand over the instances in service, divided by its target
per instance, rounded up; neutral inside the tolerance band; the maximum across signals; a
per-decision scale-out limit; and scale-in only to the highest recommendation seen during the
stabilization window. Booting instances count as capacity on the way.

A scale-out acts while a scale-out alarm is in ALARM, or within the follow-through window after
the last scale-out (closed-loop clients show hidden demand only once capacity is added). Within
the stabilization window after a scale-in, a scale-out must hold over the long window too.

Missing datapoints are read conservatively, as the HPA does for pods without metrics: an
instance in service without a datapoint adds nothing to a scale-out and its full target to a
scale-in.

Panic mode follows the Knative Pod Autoscaler's: when the demand that does not saturate (the
hosts' offered load), read over a short window, asks for at least ``panic_threshold`` x the
instances in service, the fleet is sized at once for that demand plus its backlog drained
within ``backlog_drain_seconds`` (no per-decision limit, no alarm gate), and never scaled in;
panic ends ``panic_stable_seconds`` after the last reading that called for it. The step that
enters sizes on the panic window's highest period; a further one (and one that starts panic
again while capacity is on its way) on the arrivals alone, held over the panic so far, and the
other signals add only where their long window agrees. The recorded recommendation carries the
panic size, so the scale-in stabilization window still applies after. What the panic added is
released once it is over and the stabilized readings agree, without a scale-in alarm, but never
below what the arrivals may need with their count's noise (and never more than it added).

Hosts that clear a queue read their CPU above their arrivals: while the arrivals plus that queue
fit the instances in service, CPU counts for no more. Arrivals above the capacity for a minute,
beyond their count's noise, are open-loop demand, measured rather than hidden.

The load balancer's count (a guard) counts only while a scale-out alarm is in ALARM and some
instance in service is silent in the hosts' own signals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from autoscaler.model import Decision, Direction, FleetState, Panic, Recommendation, ScalingPolicy, Snapshot
from autoscaler.signals import SATURATED, SignalData, SignalSpec, demand

# Queued work a host under which nobody is waiting: a fifth of one of the worker's 0.5 s
# requests. The spike's eight closed-loop clients on two hosts keep about 0.5 s queued a host
# (Little's law); a 22-host open-loop fleet at 96.5 % held 0.03 s (docs/tuning.md).
QUIET_BACKLOG_SECONDS = 0.1

# Standard errors of the arrivals' count that a reading must clear to count as measured beyond
# noise: open-loop arrivals are Poisson, so a count of N varies by sqrt(N); two standard errors
# leave about 2.3 % on the far side, per reading.
ARRIVALS_STANDARD_ERRORS = 2.0

# Reasons, as they appear in logs, metrics and the activity history.
SUSPENDED = "suspended"
BELOW_MIN = "below-min"
ABOVE_MAX = "above-max"
NO_METRICS = "no-metrics"
NOTHING_IN_SERVICE = "nothing-in-service"
SCALE_OUT = "scale-out"
FOLLOW_THROUGH = "scale-out-follow-through"
SCALE_IN = "scale-in"
CAPACITY_ON_THE_WAY = "capacity-on-the-way"
OUT_NOT_ARMED = "scale-out-alarm-not-in-alarm"
IN_NOT_ARMED = "scale-in-alarm-not-in-alarm"
STABILIZING = "scale-in-stabilizing"
AT_TARGET = "within-tolerance"
SMALL_STEP = "step-below-minimum"
PANIC_ENTERED = "panic-entered"
PANIC_SCALE_OUT = "panic-scale-out"
PANIC_HOLDING = "panic-holding"
PANIC_OVER = "panic-over"
PANIC_RELEASE = "panic-release"
HELD_AFTER_SCALE_OUT = "scale-in-held-after-scale-out"
REASONS = (
    SUSPENDED, BELOW_MIN, ABOVE_MAX, NO_METRICS, NOTHING_IN_SERVICE, SCALE_OUT, FOLLOW_THROUGH, SCALE_IN,
    CAPACITY_ON_THE_WAY, OUT_NOT_ARMED, IN_NOT_ARMED, STABILIZING, AT_TARGET, SMALL_STEP,
    PANIC_ENTERED, PANIC_SCALE_OUT, PANIC_HOLDING, PANIC_OVER, PANIC_RELEASE, HELD_AFTER_SCALE_OUT,
)  # fmt: skip


@dataclass(frozen=True)
class SignalRecommendation:
    name: str
    target: float
    up_demand: float | None  # what a scale-out may act on (fresh window, missing counts 0)
    down_demand: float | None  # what a scale-in may act on (long window, missing counts as the target)
    up: int  # recommended capacity for a scale-out
    level: int  # recommended capacity for the stabilization history and a scale-in
    scale_out_only: bool
    saturated: bool | None = None  # at its ceiling (None: the signal has no ceiling)
    panic: bool = False  # a panic signal: in panic mode, panic_reading stands for it
    silent: int | None = None  # instances in service without a datapoint (None: a fleet-wide signal)
    count: float | None = None  # arrivals counted over the long window (a signal that counts them)

    def describe(self) -> str:
        up = "-" if self.up_demand is None else f"{self.up_demand:.1f}"
        down = "-" if self.down_demand is None else f"{self.down_demand:.1f}"
        return f"{self.name}={up}/{down} (target {self.target:g}/instance)->{self.up}/{self.level}"


def clamp(value: int, policy: ScalingPolicy) -> int:
    return max(policy.min_size, min(policy.max_size, value))


def current_desired(state: FleetState, capacity: int, policy: ScalingPolicy) -> int:
    """The desired capacity now: as remembered, or (first run) what is serving or booting."""
    return state.desired if state.desired is not None else clamp(capacity, policy)


def scale_out_limit(current: int, policy: ScalingPolicy) -> int:
    """The most one decision may ask for (HPA: max(2 x current, current + 4))."""
    return max(math.ceil(policy.scale_out_factor * current), current + policy.scale_out_step)


def recommend(
    demand: float, target: float, in_service: int, current: int, tolerance: float, headroom: float = 0.0
) -> int:
    """Proportional recommendation for one signal's total demand, neutral (= current) inside the
    tolerance band; below it, sized for ``(1 - headroom) x target``.

    Outside the band the result never crosses ``current`` in the wrong direction, which keeps
    it monotone in ``demand`` when booting instances make ``current`` exceed ``in_service``.
    """
    ratio = demand / (in_service * target)
    if abs(ratio - 1.0) <= tolerance:
        return current
    # The epsilon keeps exact multiples (e.g. 2 x 0.5) from rounding up through float noise.
    if ratio > 1.0:
        return max(math.ceil(demand / target - 1e-9), current)
    # A scale-in that lands just under the target leaves the next noisy minute above it: the
    # 24-hour day went 11 -> 6 at 97 % of the target and 6 -> 7 77 s later. Waiting costs little.
    return min(math.ceil(demand / (target * (1.0 - headroom)) - 1e-9), current)


def recent_recommendations(
    history: Sequence[Recommendation], now: datetime, window_seconds: float
) -> tuple[Recommendation, ...]:
    """The part of the history the stabilization window can still see (what is worth storing)."""
    horizon = now - timedelta(seconds=window_seconds)
    return tuple(r for r in history if r.at > horizon)


def stabilized_recommendation(
    recommendation: int, history: tuple[Recommendation, ...], now: datetime, window_seconds: float
) -> int:
    """Highest recommendation within the scale-in window, the current one included."""
    return max([recommendation, *(r.desired for r in recent_recommendations(history, now, window_seconds))])


def signal_recommendations(
    snapshot: Snapshot, policy: ScalingPolicy, current: int, now: datetime
) -> list[SignalRecommendation]:
    """Every signal of the table that has data, read as demand over the instances in service."""
    in_service = snapshot.in_service_ids
    out: list[SignalRecommendation] = []
    if not in_service:
        return out
    for spec in policy.signals:
        if spec.backlog:  # added to the panic demand, not sized on its own
            continue
        reading = demand(spec, snapshot.signals.get(spec.name, SignalData()), in_service, now)
        up_demand = reading.recent if reading.recent is not None else reading.settled
        down_demand = None if reading.settled is None else reading.settled + reading.silent * spec.target
        if up_demand is None and down_demand is None:
            continue
        n = len(in_service)
        up = current if up_demand is None else recommend(up_demand, spec.target, n, current, policy.tolerance)
        level = current if down_demand is None else recommend(down_demand, spec.target, n, current,
                                                              policy.tolerance, policy.scale_in_headroom)  # fmt: skip
        saturated = None if spec.ceiling is None or up_demand is None else up_demand >= SATURATED * spec.ceiling * n
        silent = reading.silent if spec.query.per_instance else None
        count = reading.settled * reading.seconds / 60.0 if spec.counts_arrivals and reading.settled else None
        out.append(SignalRecommendation(spec.name, spec.target, up_demand, down_demand, up, level,
                                        spec.scale_out_only, saturated, spec.panic, silent, count))  # fmt: skip
    return out


def guards_count(per_signal: Sequence[SignalRecommendation], snapshot: Snapshot) -> bool:
    """A guard (the load balancer's count) counts while a scale-out alarm is in ALARM and some
    instance in service is silent in the hosts' own signals.

    The load balancer counts the same requests the hosts count, a minute coarse and minutes
    late: with every host reporting it adds nothing but its lag, and its late minute of a burst
    that had ended scaled a fleet straight back out after its scale-in (flash crowd: 5 -> 2, then
    2 -> 5 on 386 requests a minute while the hosts read 8 %; sawtooth: 4 -> 2 -> 3). It is the
    hosts' publishers that it stands in for: a host without datapoints counts 0 in a scale-out.
    """
    if Direction.OUT not in snapshot.active:
        return False
    hosts = [s for s in per_signal if s.silent is not None and not s.scale_out_only]
    return not hosts or any(s.silent for s in hosts)


def saturated(per_signal: Sequence[SignalRecommendation]) -> bool:
    """Every signal that has a ceiling reads at it: the fleet serves all it can, and how much more
    is asked is unknown (closed-loop clients wait instead of asking). One signal below its ceiling
    (the arrival rate, when a backlog drains) says the demand is known."""
    flags = [s.saturated for s in per_signal if s.saturated is not None]
    return bool(flags) and all(flags)


def arrivals_noise(per_signal: Sequence[SignalRecommendation]) -> float | None:
    """The arrival rate's relative margin of noise over the long window (``ARRIVALS_STANDARD_ERRORS``
    / sqrt(count)), or None without a count."""
    count = max((s.count for s in per_signal if s.count), default=None)
    return None if count is None else ARRIVALS_STANDARD_ERRORS / math.sqrt(count)


@dataclass(frozen=True)
class PanicReading:
    demand: float  # the panic signal's total over the panic window, plus the backlog to drain
    target: float
    capacity: float  # what one host serves flat out, in the signal's unit
    wanted: int  # instances that demand needs
    queued: float | None = None  # host-seconds of queued work over the window (None: no figure)

    def describe(self) -> str:
        return f"panic demand {self.demand:.1f} (target {self.target:g}/instance)->{self.wanted}"

    def below_capacity(self, in_service: int) -> bool:
        """The demand is measured, and below what the instances in service serve: a saturated
        reading then comes from a queue that drains, not from demand beyond the fleet."""
        return self.demand < SATURATED * self.capacity * in_service

    def nobody_waits(self, in_service: int) -> bool:
        """Next to nothing is queued: closed-loop clients hide demand only while their requests
        wait, so a fleet at its ceiling with an empty queue hides none."""
        return self.queued is not None and self.queued < QUIET_BACKLOG_SECONDS * in_service

    def knows_the_demand(self, in_service: int) -> bool:
        return self.below_capacity(in_service) or self.nobody_waits(in_service)

    def draining(self, in_service: int) -> bool:
        """Work is queued, and the arrivals plus that queue drained within the budget fit what
        the instances in service serve: CPU above this reading's need is the queue being served
        sooner than the budget asks, not demand."""
        return self.queued is not None and not self.nobody_waits(in_service) and self.below_capacity(in_service)


@dataclass(frozen=True)
class SettledArrivals:
    """The arrivals over the panic signals' long window, and their count's relative noise."""

    reading: PanicReading
    noise: float

    def open_loop(self, in_service: int) -> bool:
        """Beyond their noise, the arrivals exceed what the instances in service serve. Closed-loop
        clients wait for their answers, so they can ask for more than the fleet serves only until
        every one of them waits; arrivals that exceed it for a minute come from clients that do
        not wait, and the offered load then measures their demand."""
        return self.reading.demand * (1.0 - self.noise) >= self.reading.capacity * in_service

    def most_needed(self) -> int:
        """Instances the arrivals may need at the target, their noise included."""
        return math.ceil(self.reading.demand * (1.0 + self.noise) / self.reading.target - 1e-9)


def settled_arrivals(
    snapshot: Snapshot, policy: ScalingPolicy, now: datetime, per_signal: Sequence[SignalRecommendation]
) -> SettledArrivals | None:
    """None without an arrivals reading or a count of them."""
    reading = panic_reading(snapshot, policy, now, window=long_panic_window(policy), backlog=False)
    noise = arrivals_noise(per_signal)
    return None if reading is None or noise is None else SettledArrivals(reading, noise)


def panic_reading(
    snapshot: Snapshot,
    policy: ScalingPolicy,
    now: datetime,
    window: float | None = None,
    backlog: bool = True,
    peak: bool = False,
) -> PanicReading | None:
    """The largest need among the panic signals over the panic window (its mean, or with ``peak``
    its highest period), backlog included unless ``backlog`` is False."""
    in_service = snapshot.in_service_ids

    def recent(spec: SignalSpec) -> float | None:
        short = replace(spec, scale_out_window_seconds=int(window or policy.panic_window_seconds))
        reading = demand(short, snapshot.signals.get(spec.name, SignalData()), in_service, now)
        return reading.peak if peak else reading.recent

    figures = [recent(spec) for spec in policy.signals if spec.backlog and backlog]
    queued = sum(v or 0.0 for v in figures)  # host-seconds
    known_queue = queued if any(v is not None for v in figures) else None
    best: PanicReading | None = None
    for spec in policy.signals:
        if not spec.panic or spec.host_capacity is None:
            continue
        offered = recent(spec)
        if offered is None:
            continue
        # Draining ``queued`` host-seconds within the drain time takes that many hosts' worth.
        total = offered + queued * spec.host_capacity / policy.backlog_drain_seconds
        wanted = math.ceil(total / spec.target - 1e-9)
        candidate = PanicReading(total, spec.target, spec.host_capacity, wanted, known_queue)
        if best is None or candidate.wanted > best.wanted:
            best = candidate
    return best


def long_panic_window(policy: ScalingPolicy) -> float:
    """The panic signals' long window."""
    return max((s.window_seconds for s in policy.signals if s.panic), default=policy.panic_window_seconds)


def settled_panic_window(policy: ScalingPolicy, panic: Panic, now: datetime) -> float:
    """What a further step while panicking must hold over: the panic so far and the panic window
    before it, up to the panic signals' long window."""
    so_far = (now - panic.since).total_seconds() + policy.panic_window_seconds
    return min(long_panic_window(policy), max(policy.panic_window_seconds, so_far))


def next_panic(
    previous: Panic | None, reading: PanicReading | None, in_service: int, policy: ScalingPolicy, now: datetime
) -> Panic | None:
    """Panic mode after this decision: (re)armed by a reading at the threshold (the demand's ratio
    to what the instances in service hold at target, as Knative compares), else kept until it has
    been quiet for the stable window."""
    if reading is not None and in_service and reading.demand / (reading.target * in_service) >= policy.panic_threshold:
        return Panic(previous.since if previous is not None else now, now, previous.added if previous else 0)
    if previous is not None and within(previous.seen_at, policy.panic_stable_seconds, now):
        return previous
    return None


def within(at: datetime | None, seconds: float, now: datetime) -> bool:
    """``at`` is set and less than ``seconds`` before ``now``."""
    return at is not None and (now - at).total_seconds() < seconds


def following_through(state: FleetState, policy: ScalingPolicy, now: datetime) -> bool:
    """A scale-out happened within the follow-through window and no scale-in since.

    Closed-loop clients wait instead of asking, so a short fleet hides part of its demand; the
    capacity a scale-out adds brings some of it back, and the hosts may then settle between the
    target and the scale-out alarm's line, where the alarm stays quiet. The alarm's margin above
    the target keeps a fleet at rest from chasing noise; a fleet that is still growing is not at
    rest, so for a while after a scale-out the decision's own reading may continue it.
    """
    return within(state.last_scale_out_at, policy.scale_out_follow_through_seconds, now)


def just_scaled_out(state: FleetState, policy: ScalingPolicy, now: datetime) -> bool:
    """A scale-out within the reversal window, and no scale-in since (a scale-in clears
    ``last_scale_out_at``): nothing scales in."""
    return within(state.last_scale_out_at, policy.reversal_window_seconds, now)


def just_scaled_in(state: FleetState, policy: ScalingPolicy, now: datetime) -> bool:
    """The last change of capacity was a scale-in, within the reversal window."""
    at = state.last_scaling_at
    return at != state.last_scale_out_at and within(at, policy.reversal_window_seconds, now)


def scale_out_at(state: FleetState, decision: Decision, now: datetime) -> datetime | None:
    """``last_scale_out_at`` after ``decision``: set by a scale-out, cleared by a scale-in."""
    if decision.direction is Direction.OUT:
        return now
    if decision.direction is Direction.IN:
        return None
    return state.last_scale_out_at


def panic_held(state: FleetState, decision: Decision) -> int:
    """``panic_held`` after ``decision``: what the panic added, handed over when the panic ends,
    and cleared by the next resize (the release's, or any other)."""
    if decision.panic is not None or decision.changed:
        return 0
    if state.panic is not None:
        return state.panic.added
    return state.panic_held


def decide(snapshot: Snapshot, policy: ScalingPolicy, now: datetime) -> Decision:
    """Return the desired capacity for ``snapshot`` under ``policy`` at ``now``."""
    state = snapshot.state
    current = current_desired(state, snapshot.capacity, policy)

    def keep(reason: str, message: str, recommendation: int | None = None) -> Decision:
        return Decision(current, current, reason, message, recommendation)

    if state.suspended:
        return keep(SUSPENDED, "automatic scaling is suspended")
    if current < policy.min_size:
        return Decision(policy.min_size, current, BELOW_MIN, f"raised to min size {policy.min_size}")
    if current > policy.max_size:
        return Decision(policy.max_size, current, ABOVE_MAX, f"lowered to max size {policy.max_size}")

    in_service = snapshot.in_service
    if in_service == 0:
        return keep(NOTHING_IN_SERVICE, f"no instance in service yet ({snapshot.booting} booting)")
    per_signal = signal_recommendations(snapshot, policy, current, now)
    if not per_signal:
        return keep(NO_METRICS, "no signal had data in its window")
    # The decision carries the recommendations it was made from (the activity history's).
    return replace(_decide_on(per_signal, snapshot, policy, current, now), signals=tuple(per_signal))


def _decide_on(
    per_signal: Sequence[SignalRecommendation], snapshot: Snapshot, policy: ScalingPolicy, current: int, now: datetime
) -> Decision:
    """decide's rules once every signal has a recommendation."""
    state = snapshot.state
    in_service = snapshot.in_service

    def keep(reason: str, message: str, recommendation: int | None = None) -> Decision:
        return Decision(current, current, reason, message, recommendation)

    reading = panic_reading(snapshot, policy, now)
    # A guard's reading counts only while a scale-out alarm is armed: stale, it must not hold a
    # scale-in back. A saturated reading is censored; when the demand that does not saturate
    # reads below the fleet's capacity, it says nothing more (a host at 100 % CPU while its
    # queue drains asks for no host the offered load and the backlog do not already count).
    # At or above the capacity, the offered load of closed-loop clients is capped too (they
    # wait instead of asking), so the saturation rule stands unless panic mode sizes, or unless
    # nobody waits: an open-loop fleet that lags a rise reads 95-100 % with an empty queue (the
    # 24-hour day: 22 hosts at 96.5 % with 0.03 s queued a host were doubled to 44 where 27
    # serve, and kept them for eight hours under the CPU-low line), or unless the arrivals exceed
    # the capacity beyond their noise for a minute, which waiting clients cannot do (after a
    # burst's panic, 3 hosts at 100 % with 2 booting, offered 117 % of them, were doubled to 6
    # where 5 serve the burst).
    arrivals = settled_arrivals(snapshot, policy, now, per_signal)
    known = reading is not None and (
        reading.knows_the_demand(in_service) or (arrivals is not None and arrivals.open_loop(in_service))
    )
    guards = guards_count(per_signal, snapshot)
    drained_bound = max(current, reading.wanted) if reading is not None and reading.draining(in_service) else None
    if drained_bound is not None:
        # The target is the arrivals, once the backlog's budget is met. Hosts that clear a queue
        # read their CPU above what arrives: after a burst's panic, five hosts read 435 % CPU
        # where 364 % was offered, and an alarm took them 5 -> 6 for the rest of the burst
        # (burst-20x, sweep run 25). Every signal with a ceiling is bounded (its ``saturated`` is
        # set): the request count reads the arrivals themselves, so the bound seldom touches it.
        per_signal = [replace(s, up=min(s.up, drained_bound)) if s.saturated is not None else s for s in per_signal]
    eligible = [s for s in per_signal if not s.scale_out_only or guards]
    upward = max((s.up for s in eligible if not (known and s.saturated)), default=current)
    if just_scaled_in(state, policy, now):
        # A scale-in leaves the hosts nearer the scale-out line, where two noisy 10 s datapoints
        # and one high 30 s reading would scale straight back out (a flap on the diurnal day, at
        # two hosts and ~2.6 requests/s): for the reversal window the long one must agree. Held
        # for the 90 s stabilization window only, a 30 s reading still did it 158 s after the
        # scale-in, where the long window asked for no more (the 24-hour day, sweep run 5).
        upward = min(upward, max((s.level for s in eligible if not (known and s.saturated)), default=current))
    # What panic mode may add to its own reading: the other signals that are not censored, where
    # their long window agrees, as a further panic step must hold over it. Ungated in panic, the
    # requests' 30 s window alone (398 a minute over 4 hosts where 360 arrive) bought a flash
    # crowd a fifth instance, a launch that came after the crowd had gone (seen with the panic
    # entry sized on its last period, a variant not kept: docs/simulator.md).
    measured = max((min(s.up, s.level) for s in eligible if not s.saturated and not s.panic), default=current)
    if not known and saturated(per_signal):
        # The demand is unknown beyond the capacity: double (the HPA's largest step) rather than
        # creep up by a quarter per decision.
        upward = max(upward, min(2 * in_service, scale_out_limit(current, policy)))
    upward = clamp(upward, policy)
    holding = [s.level for s in per_signal if not s.scale_out_only]
    # The recorded recommendation (and any scale-in) follows the signals that may scale in.
    recommendation = clamp(max(holding), policy) if holding else current
    detail = "; ".join(s.describe() for s in per_signal)
    detail += f"; in service {in_service}, booting {snapshot.booting}, desired {current}"
    if drained_bound is not None:
        detail += f"; the hosts are draining their queue: CPU counts up to {drained_bound}"
    if not guards and Direction.OUT in snapshot.active and any(s.scale_out_only and s.up > current for s in per_signal):
        detail += "; every host in service reports: the guards' later counts not counted"

    panic = next_panic(state.panic, reading, in_service, policy, now)
    if reading is not None:
        detail += f"; {reading.describe()}"
    if panic is not None:
        assert reading is not None or state.panic is not None
        # Booting instances count: ``current`` holds them, and the need is the fleet's total. The
        # panic reading knows the demand beyond the capacity: no doubling of a saturated fleet.
        sized = reading
        entering = state.panic is None and snapshot.booting == 0
        if entering:
            # Entering: a burst that began inside the panic window left its older period short,
            # and the mean of the two under-sizes the step; a short step is paid for with a
            # launch minutes later (burst-10x: 1 -> 3 and 3 -> 4 ended 336 s after the step,
            # where 1 -> 4 at once is in time). The highest period is the burst's rate.
            sized = panic_reading(snapshot, policy, now, peak=True) or reading
        elif reading is not None:
            # Already panicking, or panicking again while capacity is on its way (a panic that
            # ended before its instances were in service, whose noisy reading then started
            # another: sized as an entry, backlog and all, it bought a fifth instance where 4 serve
            # burst-10x). A further step must hold over the long window too, so one high draw of
            # 20 s of arrivals does not add instances the burst does not need. And it
            # sizes for the arrivals alone: the step that entered panic sized for the backlog, and
            # the queue that grows while those instances boot is theirs to drain. Adding it again
            # bought instances that came after the queue was gone and stayed: the low alarms are
            # quiet at the burst's rate (burst-20x ended at 7 where 5 serve it).
            short = panic_reading(snapshot, policy, now, backlog=False)
            window = settled_panic_window(policy, state.panic or panic, now)
            settled = panic_reading(snapshot, policy, now, window=window, backlog=False)
            sized = min((r for r in (short, settled) if r is not None), key=lambda r: r.wanted, default=reading)
        wanted = clamp(max(current, measured, sized.wanted if sized is not None else current), policy)
        recommendation = max(recommendation, wanted)
        since = f"panicking since {panic.since.isoformat()}"
        if sized is not None and sized != reading:
            since += f"; sized on {sized.describe()}"
        peak = panic_reading(snapshot, policy, now, peak=True, backlog=False) if entering else None
        without_backlog = clamp(max(current, measured, peak.wanted), policy) if peak is not None else wanted
        if wanted > without_backlog:
            since += f"; the backlog adds {wanted - without_backlog} to the arrivals' need"
        if wanted > current:
            # What the panic adds, the release may give back once it is over (below).
            panic = replace(panic, added=panic.added + wanted - current)
            reason = PANIC_ENTERED if state.panic is None else PANIC_SCALE_OUT
            return Decision(wanted, current, reason, f"{detail}; {since}", recommendation, panic)
        reason = PANIC_ENTERED if state.panic is None else PANIC_HOLDING
        return Decision(current, current, reason, f"{detail}; {since}, no scale-in", recommendation, panic)
    if state.panic is not None:
        # One decision to say so; the next one may scale in, after the stabilization window.
        return keep(PANIC_OVER, f"{detail}; calm for {policy.panic_stable_seconds:g} s", recommendation)

    min_step = max(1, math.ceil(policy.min_step_fraction * current - 1e-9))
    if current < upward < min(current + min_step, policy.max_size):
        return keep(SMALL_STEP, f"{detail}; a step under {min_step} is noise at this size", recommendation)
    if upward > current:
        if Direction.OUT in snapshot.active:
            reason = SCALE_OUT
        elif following_through(state, policy, now):
            reason = FOLLOW_THROUGH
            detail += f"; within {policy.scale_out_follow_through_seconds:g} s of the last scale-out"
        else:
            return keep(OUT_NOT_ARMED, detail, recommendation)
        desired = min(upward, scale_out_limit(current, policy))
        return Decision(desired, current, reason, detail, max(recommendation, desired))
    if recommendation < current:
        # After a panic, what it added goes once the readings agree, without a scale-in alarm:
        # the panic sized on a noisy 10 s period plus the backlog, on purpose upwards, and at the
        # burst's rate the hosts then read between the scale-in alarms' lines and the target,
        # where no scale-in alarm fires (burst-20x kept 6 where 5 serve for the whole burst).
        # Never under what the arrivals may still need, their count's noise included: without
        # that margin a need of 3.13 went 4 -> 3 on noisy minutes (burst-10x-cold).
        release = Direction.IN not in snapshot.active and state.panic_held > 0  # the panic is over here
        if Direction.IN not in snapshot.active and not release:
            return keep(IN_NOT_ARMED, detail, recommendation)
        if just_scaled_out(state, policy, now):
            # The load a scale-out answered must be gone for longer than one stabilization window:
            # a panic step 73 s before a three-minute flash crowd ended was taken back 90 s after
            # it ended, a flap (flash-crowd sweep run 18).
            window = policy.reversal_window_seconds
            return keep(HELD_AFTER_SCALE_OUT, f"{detail}; within {window:g} s of the last scale-out", recommendation)
        stabilized = stabilized_recommendation(
            recommendation, state.recommendations, now, policy.scale_in_stabilization_seconds
        )
        if release:
            if arrivals is None:
                return keep(STABILIZING, f"{detail}; no count of the arrivals: nothing released", recommendation)
            most = arrivals.most_needed()
            stabilized = max(stabilized, current - state.panic_held, most)
            detail += f"; the arrivals may need up to {most} (their count's noise {100 * arrivals.noise:.1f} %)"
        if stabilized >= current:
            return keep(STABILIZING, f"{detail}; highest recent recommendation {stabilized}", recommendation)
        if max(current - min_step, policy.min_size) < stabilized:
            return keep(SMALL_STEP, f"{detail}; a step under {min_step} is noise at this size", recommendation)
        if policy.scale_in_headroom:
            detail += f"; scale-in sized at {100 * (1 - policy.scale_in_headroom):g} % of each target"
        if release:
            detail += f"; the panic added {state.panic_held}: released"
            return Decision(clamp(stabilized, policy), current, PANIC_RELEASE, detail, recommendation)
        return Decision(clamp(stabilized, policy), current, SCALE_IN, detail, recommendation)
    if snapshot.capacity < current and any(s.up > in_service for s in per_signal):
        return keep(CAPACITY_ON_THE_WAY, detail, recommendation)
    return keep(AT_TARGET, detail, recommendation)
