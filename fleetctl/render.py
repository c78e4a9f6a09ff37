"""Tables (coloured on a terminal, plain when piped or with NO_COLOR) and JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

RESET = "\033[0m"
STYLES = {
    "green": "\033[32m",
    "yellow": "\033[33m",
    "red": "\033[31m",
    "blue": "\033[34m",
    "magenta": "\033[35m",
    "cyan": "\033[36m",
    "bold": "\033[1m",
    "dim": "\033[2m",
}
# Cell value -> style, for the columns whose values carry a verdict.
VALUE_STYLES = {
    "in service": "green",
    "booting": "yellow",
    "warming": "yellow",
    "unhealthy": "red",
    "draining": "magenta",
    "pool": "blue",
    "healthy": "green",
    "initial": "yellow",
    "unused": "dim",
    "running": "green",
    "pending": "yellow",
    "stopping": "yellow",
    "stopped": "blue",
    "shutting-down": "red",
    "OK": "green",
    "ALARM": "red",
    "INSUFFICIENT_DATA": "yellow",
    "Successful": "green",
    "PartiallyFailed": "yellow",
    "Failed": "red",
    "ok": "green",
    "error": "red",
}


class Renderer:
    def __init__(self, stream: TextIO | None = None, colour: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        if colour is None:
            colour = self.stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        self.colour = colour

    def style(self, text: str, style: str | None) -> str:
        if not self.colour or not style:
            return text
        return f"{STYLES[style]}{text}{RESET}"

    def line(self, text: str = "") -> None:
        print(text, file=self.stream)

    def heading(self, text: str) -> None:
        self.line(self.style(text, "bold"))

    def fields(self, pairs: Sequence[tuple[str, Any]], styles: Mapping[str, str] | None = None) -> None:
        """Aligned ``label: value`` lines."""
        width = max((len(label) for label, _ in pairs), default=0)
        for label, value in pairs:
            text = cell(value)
            style = (styles or {}).get(label) or VALUE_STYLES.get(text)
            self.line(f"{label + ':':<{width + 1}} {self.style(text, style)}")

    def table(
        self, columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]], empty: str = "(none)"
    ) -> None:
        """``columns`` is (row key, header); widths follow the plain text, colour is added after padding."""
        if not rows:
            self.line(self.style(empty, "dim"))
            return
        cells = [[cell(row.get(key)) for key, _ in columns] for row in rows]
        widths = [max(len(header), *(len(r[n]) for r in cells)) for n, (_, header) in enumerate(columns)]
        header = "  ".join(f"{h:<{w}}" for (_, h), w in zip(columns, widths, strict=True))
        self.line(self.style(header.rstrip(), "bold"))
        for row in cells:
            padded = [self.style(f"{text:<{w}}", VALUE_STYLES.get(text)) for text, w in zip(row, widths, strict=True)]
            self.line("  ".join(padded).rstrip())

    def json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, default=str), file=self.stream)


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) if value else "-"
    return str(value)
