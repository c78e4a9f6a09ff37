"""The repository stands on its own: it cites public sources (AWS documentation by page title or
address, benchmark commands), never notes, fact files, scenario tags or code outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".cfg", ".txt"}
SKIPPED_DIRECTORIES = {"out", "__pycache__", "node_modules"}
# Each word is spelt with a one-letter class ("n[o]tes") so that this file, which holds the
# patterns, does not itself match them when the whole tree is searched for such citations.
OUTSIDE = re.compile(
    r"\(n[o]tes[,:)]|\bthe n[o]tes\b|\bn[o]tes \(|\[f[a]cts:|shared/n[o]tes|aws-f[a]cts|/work/sh[a]red|\[sc[e]nario\]"
    r"|\[contracts\]|\bthe seed\b|\bseed(?:'s)? design|in the time available",
    re.IGNORECASE,
)


def _files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        parts = relative.parts
        if any(p.startswith(".") or p in SKIPPED_DIRECTORIES or p.endswith(".egg-info") for p in parts[:-1]):
            continue
        if path.suffix in SUFFIXES and path.is_file() and path != Path(__file__).resolve():
            files.append(path)
    return files


def test_nothing_cites_what_is_outside_the_repository():
    hits = []
    for path in _files():
        relative = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{relative}:{number}: {line.strip()[:100]}")
    assert not hits, "citations of sources outside the repository:\n" + "\n".join(hits)
