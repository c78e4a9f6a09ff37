#!/usr/bin/env python3
"""Copy userdata/bootstrap.sh verbatim into template.yaml's launch-template UserData.

CloudFormation cannot include a local file, so the template carries an inline copy between
the marker comments ``# BEGIN userdata/bootstrap.sh`` and ``# END userdata/bootstrap.sh``
(the first item of ``Fn::Sub: [text, {variables}]``). Run after every change of the script:

    python3 tools/sync_userdata.py            # rewrite the inline copy
    python3 tools/sync_userdata.py --check    # exit 1 if it differs (CI, tests/template)

The script is a ``Fn::Sub`` string: it may use only the placeholders below; a shell variable
is written ``$name`` or ``${!name}`` (Fn::Sub's escape for a literal ``${name}``).
Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SCRIPT = ROOT / "userdata" / "bootstrap.sh"
BEGIN = "# BEGIN userdata/bootstrap.sh"
END = "# END userdata/bootstrap.sh"
PLACEHOLDERS = frozenset({"AWS::Region", "FleetName", "WorkerLayerVersionArn", "CpuMetricNamespace"})
_HEADER = re.compile(r"^(?P<indent>\s*)- \|[-+]?\s*$")
_SUB_VAR = re.compile(r"\$\{(?!!)([^}]*)\}")


class SyncError(RuntimeError):
    pass


def unknown_placeholders(script: str) -> list[str]:
    """``${X}`` in the script that Fn::Sub would try to resolve but the template does not provide."""
    return sorted({name for name in _SUB_VAR.findall(script) if name not in PLACEHOLDERS})


def render(template_text: str, script: str) -> str:
    """The template text with the inline copy replaced by ``script``."""
    lines = template_text.splitlines(keepends=True)
    try:
        begin = next(i for i, line in enumerate(lines) if line.strip().startswith(BEGIN))
        end = next(i for i, line in enumerate(lines) if i > begin and line.strip().startswith(END))
    except StopIteration:
        raise SyncError(f"markers {BEGIN!r} / {END!r} not found in the template") from None
    header = next(
        (i for i in range(begin + 1, end) if _HEADER.match(lines[i].rstrip("\n"))),
        None,
    )
    if header is None:
        raise SyncError("no '- |' block scalar between the markers")
    if not script:
        raise SyncError("the user-data script is empty")
    first = script.splitlines()[0]
    if first[:1].isspace():
        raise SyncError("the script's first line must not start with whitespace")
    match = _HEADER.match(lines[header].rstrip("\n"))
    assert match is not None
    indent = match.group("indent") + "  "
    # Chomping indicator reproduces the file's trailing newlines exactly.
    if not script.endswith("\n"):
        indicator, body = "|-", script + "\n"
    elif script.endswith("\n\n"):
        indicator, body = "|+", script
    else:
        indicator, body = "|", script
    new_header = f"{match.group('indent')}- {indicator}\n"
    block = [(indent + line if line != "\n" else line) for line in body.splitlines(keepends=True)]
    end_line = lines[end]
    return "".join([*lines[:header], new_header, *block, end_line, *lines[end + 1 :]])


def inline_copy(template_text: str) -> str:
    """The script as CloudFormation will see it (the first item of the UserData Fn::Sub)."""
    sys.path.insert(0, str(ROOT))
    from tools.cfn_template import loads_template

    template = loads_template(template_text)
    user_data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    sub = user_data["Fn::Base64"]["Fn::Sub"]
    script: str = sub[0] if isinstance(sub, list) else sub
    return script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the inline copy differs")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--script", type=Path, default=SCRIPT)
    args = parser.parse_args(argv)
    if not args.script.exists():
        print(f"{args.script} does not exist yet; the template keeps its placeholder", file=sys.stderr)
        return 0
    script = args.script.read_text(encoding="utf-8")
    unknown = unknown_placeholders(script)
    if unknown:
        print(
            f"{args.script}: Fn::Sub would fail on {', '.join('${' + u + '}' for u in unknown)}; "
            "write shell variables as $name or ${!name}",
            file=sys.stderr,
        )
        return 1
    text = args.template.read_text(encoding="utf-8")
    new_text = render(text, script)
    if inline_copy(new_text) != script:
        raise SyncError("internal error: the rendered block does not read back as the script")
    if args.check:
        if new_text != text:
            print(f"{args.template} is out of date: run python3 tools/sync_userdata.py", file=sys.stderr)
            return 1
        return 0
    if new_text != text:
        args.template.write_text(new_text, encoding="utf-8")
        print(f"updated {args.template} from {args.script}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
