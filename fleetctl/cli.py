"""``fleetctl``: argparse, dispatch, and expected failures turned into one clear line and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import TYPE_CHECKING

from fleetctl import stack as stacks

if TYPE_CHECKING:
    from fleetctl.context import Context
    from fleetctl.render import Renderer

Command = Callable[["Context", argparse.Namespace, "Renderer"], int]
EXIT_ERROR = 1
EXIT_USAGE = 2

DESCRIPTION = """\
Operate an ec2-fleet-autoscaler fleet. The fleet is found through its CloudFormation stack
(outputs and parameters); reads and actions go through the same control plane as the
functions (decision lease, min/max, warm pool)."""
EPILOG = """\
environment: FLEETCTL_STACK, AWS_PROFILE, AWS_REGION / AWS_DEFAULT_REGION, NO_COLOR.
exit codes: 0 ok, 1 error (stack not found, credentials, access denied, unreachable endpoint,
busy lease, failed pings or actions; a refresh waited for that did not succeed), 2 usage or a
refused request (nothing changed), 3 `refresh status --wait` timed out."""


def common_options(top_level: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after the command name.

    The subcommands' copies default to SUPPRESS, so ``fleetctl --stack x status`` keeps ``x``
    (a subparser's own default would overwrite the value parsed before the command).
    """

    def default(value: object) -> object:
        return value if top_level else argparse.SUPPRESS

    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    stack = os.environ.get("FLEETCTL_STACK") or stacks.default_stack_name()
    group.add_argument(
        "--stack",
        default=default(stack),
        help=f"CloudFormation stack name (env FLEETCTL_STACK; default: stack_name in samconfig.toml, {stack})",
    )
    group.add_argument(
        "--region",
        default=default(None),
        help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / the profile's)",
    )
    group.add_argument("--profile", default=default(None), help="AWS named profile (default: AWS_PROFILE)")
    group.add_argument(
        "--endpoint-url",
        metavar="URL",
        default=default(None),
        help="AWS endpoint, e.g. a moto server: http://127.0.0.1:5000",
    )
    group.add_argument(
        "--output",
        "-o",
        choices=("table", "json"),
        default=default("table"),
        help="table (coloured on a terminal) or json (default table)",
    )
    group.add_argument("--no-color", action="store_true", default=default(False), help="never colour tables")
    group.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options(top_level=False)
    parser = argparse.ArgumentParser(
        prog="fleetctl",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[common_options(top_level=True)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, run: str | None, summary: str, description: str | None = None, aliases: Sequence[str] = ()
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            parents=[common],
            aliases=list(aliases),
            help=summary,
            description=description or summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if run:
            p.set_defaults(run=run)
        return p

    add(
        "status",
        "commands:status",
        "instances with their lifecycle and health, totals, desired capacity, last decision",
        "List the fleet's instances (id, AZ, EC2 state, lifecycle, target health, launch time,\n"
        "uptime) with totals, the desired capacity, the last decision and whether scaling is suspended.\n"
        "Lifecycle: in service | booting | unhealthy | draining | warming | pool.",
    )
    add(
        "alarms",
        "commands:alarms",
        "the fleet's CloudWatch alarms: state, metric, threshold, period, datapoints, last change",
        "List the fleet's alarms (every alarm named <fleet>-..., plus those the stack outputs name):\n"
        "state, metric or composite rule, threshold, period, datapoints to alarm (M/N), last state change.",
    )
    p = add(
        "activities",
        "commands:activities",
        "scaling-activity history from the state table, newest first (alias: history)",
        "The activity history, newest first: scaling decisions, suspend / resume, and the rolling\n"
        "replacement's events (refresh-started, -checkpoint, -resumed, -succeeded, -rolling-back,\n"
        "-rolled-back, -failed, -cancelled) with the instances each step replaced and their versions.",
        aliases=("history",),
    )
    p.add_argument("--since", metavar="WHEN", help="only since WHEN: a duration ago (90s, 30m, 1h, 2d, 1w) or ISO time")
    p.add_argument("--limit", type=_positive, default=50, help="at most this many activities (default %(default)s)")

    p = add(
        "scale",
        "commands:scale",
        "manual override: set desired capacity (--to N, out, in)",
        "Set the desired capacity through the decision lease, like an alarm would; the stack's\n"
        "MinSize and MaxSize still hold (a request beyond them is clamped). Works while suspended.\n"
        "Says what it will do, then what it did.\n\n"
        "examples:\n  fleetctl scale --to 4\n  fleetctl scale out --by 2\n  fleetctl scale in --dry-run",
    )
    p.add_argument("direction", nargs="?", choices=("out", "in"), help="one step out or in from the current desired")
    p.add_argument("--to", type=_non_negative, metavar="N", help="set the desired capacity to N")
    p.add_argument("--by", type=_positive, default=1, metavar="K", help="step size of out / in (default %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="show what would happen, change nothing")

    add(
        "suspend",
        "commands:suspend",
        "pause automatic scaling (maintenance); alarms and the reconcile leave the fleet alone",
    )
    add("resume", "commands:resume", "resume automatic scaling")

    p = add(
        "pool",
        "commands:pool",
        "show the warm pool; `pool fill` initializes it up to its size",
        "Without an action: the warm pool (stopped, installed instances ready to start, and the\n"
        "ones warming up). `pool fill` runs the stack's create entry point: the fleet at its desired\n"
        "capacity (MinSize if none yet) plus warm-up launches until the pool reaches WarmPoolSize.",
    )
    p.add_argument("pool_action", nargs="?", choices=("fill",), metavar="fill", help="fill the pool up to its size")
    p.add_argument("--dry-run", action="store_true", help="with fill: show what would happen")

    add_refresh(add("refresh", None, REFRESH_SUMMARY, REFRESH_DESCRIPTION), common)

    p = add("ping", "ping:ping", "GET /ping through the load balancer URL (stack output LoadBalancerUrl), with latency")
    p.add_argument("-n", "--count", type=_positive, default=5, help="number of requests (default %(default)s)")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between requests (default %(default)s)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default %(default)s)")
    p.add_argument("--url", help="base URL instead of the stack's LoadBalancerUrl")
    return parser


REFRESH_SUMMARY = "rolling replacement onto the launch-template version: start, status [--wait], cancel, rollback"
REFRESH_DESCRIPTION = """\
Rolling replacement ("instance refresh") of the fleet's instances onto the launch-template
version the stack configures: the warm pool first, then the instances in service, surge first
(never fewer in service than --min-healthy % of the desired capacity, never more than
--max-surge beyond it). A deploy that changes the launch template starts one by itself;
the reconcile function moves it on every minute.

examples:
  fleetctl refresh start --dry-run
  fleetctl refresh start --checkpoints 50 --checkpoint-delay 600
  fleetctl refresh status --wait --timeout 1800
  fleetctl refresh rollback"""


def add_refresh(parent: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = parent.add_subparsers(dest="refresh_action", metavar="ACTION", required=True)

    def add(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        p = actions.add_parser(
            name,
            parents=[common],
            help=summary,
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(run=f"refresh:{name}")
        return p

    p = add(
        "start",
        "start a refresh to the configured version (preferences default to the template's)",
        "Start a refresh to the launch-template version the stack configures, and take its first\n"
        "step at once (the reconcile function takes the next ones, every minute). Preferences not\n"
        "given come from the template (RefreshMinHealthyPercentage, RefreshMaxSurge, ...).\n"
        "Refused while another refresh is in progress, paused or rolling back.",
    )
    p.add_argument("--min-healthy", type=_percent, metavar="N", help="keep at least N %% of desired in service (0-100)")
    p.add_argument(
        "--max-surge", type=_surge, metavar="N|P%", help="at most N instances, or P %% of desired, beyond desired"
    )
    p.add_argument(
        "--warmup", type=_non_negative, metavar="SECONDS", help="a replacement counts once it served this long"
    )
    p.add_argument(
        "--checkpoints",
        type=_checkpoints,
        metavar="P,...",
        help="pause at these percentages on the new version: 50,100",
    )
    p.add_argument("--checkpoint-delay", type=_non_negative, metavar="SECONDS", help="how long each checkpoint pauses")
    p.add_argument(
        "--no-skip-matching",
        dest="skip_matching",
        action="store_false",
        default=None,
        help="replace every instance once, even those already on the version",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be replaced and the first step")

    p = add(
        "status",
        "the latest refresh and its progress; --wait until it ends",
        "The latest refresh (id, status, cause, versions, preferences, checkpoints, reason, times)\n"
        "and the progress: instances on the refresh's version (new) and on another (old), in service\n"
        "and in the pool. --wait polls until the refresh ends: exit 0 when it succeeded (or there is\n"
        "nothing to replace), 1 when it was cancelled, failed or rolled back, 3 on --timeout.",
    )
    p.add_argument("--wait", action="store_true", help="poll until the refresh ends")
    p.add_argument(
        "--timeout",
        type=_non_negative,
        default=3600,
        metavar="SECONDS",
        help="with --wait: give up after this long, exit 3 (0: no limit; default %(default)s)",
    )
    p.add_argument(
        "--interval",
        type=_positive_seconds,
        default=15.0,
        metavar="SECONDS",
        help="with --wait: seconds between polls (default %(default)s)",
    )
    add(
        "cancel",
        "stop replacing; instances already replaced stay",
        "Cancel the refresh in progress: nothing more is replaced; instances already on the new\n"
        "version stay, and new instances keep getting the refresh's version.",
    )
    add(
        "rollback",
        "pin the previous version back and replace the refresh's new instances",
        "Roll the latest refresh back: the previous launch-template version is pinned (new instances\n"
        "get it) and every instance of the refresh's version is replaced, pool first, surge first.\n"
        "A later deploy of another version clears the pin.",
    )


def quiet_control_plane(debug: bool) -> None:
    """The functions' powertools logger, tracer and metrics serve Lambda; on a terminal only
    warnings matter (everything with --debug). Read at import, so set before the first import."""
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "DEBUG" if debug else "WARNING")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "fleetctl")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


def logs_to_stderr() -> None:
    """Keep stdout for tables and JSON: the control plane's log lines go to stderr."""
    import logging

    for handler in logging.getLogger("autoscaler").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def resolve(target: str) -> Command:
    """``"module:function"`` inside the fleetctl package."""
    module, _, name = target.partition(":")
    command: Command = getattr(import_module(f"fleetctl.{module}"), name)
    return command


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not >= 1")
    return value


def _surge(text: str) -> str:
    from autoscaler.refresh import surge_values

    try:
        surge_values(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not >= 0")
    return value


def _percent(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage (0-100)")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not > 0")
    return value


def _checkpoints(text: str) -> tuple[int, ...]:
    """``50,100``: increasing whole percentages in 1-100."""
    values = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or not 0 < int(part) <= 100:
            raise argparse.ArgumentTypeError(f"{part!r} in {text!r} is not a whole percentage in 1-100")
        values.append(int(part))
    if values != sorted(set(values)):
        raise argparse.ArgumentTypeError(f"{text!r}: checkpoints must increase, e.g. 50,100")
    return tuple(values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "scale" and (args.to is None) == (args.direction is None):
        parser.error("scale: give either --to N, or out / in")
    if args.command == "pool" and args.dry_run and args.pool_action != "fill":
        parser.error("pool: --dry-run goes with `pool fill`")
    if not args.stack:
        parser.error(f"which stack? give --stack NAME or FLEETCTL_STACK (no {stacks.SAMCONFIG} to read it from)")
    # Commands load lazily: `--help` and usage errors never import boto3 or the control plane.
    quiet_control_plane(args.debug)
    from fleetctl.context import Context
    from fleetctl.render import Renderer

    ctx = Context(args.stack, region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)
    out = Renderer(colour=False if args.no_color else None)
    try:
        run: Command = resolve(args.run)
        logs_to_stderr()
        return run(ctx, args, out)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from fleetctl.errors import explain, refused

        message = explain(exc, ctx)
        if message is None or args.debug:
            raise
        if isinstance(exc, ValueError) and message.startswith("--"):
            parser.error(message)
        print(f"fleetctl: error: {message}", file=sys.stderr)
        return EXIT_USAGE if refused(exc) else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
