#!/usr/bin/env bash
# tools/venv.sh DIR PYTHON LOCK [--editable]: make DIR a virtual environment of PYTHON holding
# exactly LOCK's packages (requirements/*.txt, written by `make lock`), installed by uv
# (tools/uv.sh) in hash-checking mode; --editable also installs this project into it (no
# dependencies: the lock has them; no build isolation: the lock has setuptools too).
# Stamps record the lock's digest and the interpreter's version (and pyproject.toml's digest for
# the project): when the lock or the interpreter changes, DIR is made anew, so nothing the lock
# dropped lingers. Prints nothing when DIR is up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1 python=$2 lock=$3 editable=${4:-}
# The interpreter is the one given: uv must not fetch one of its own.
export UV_PYTHON_DOWNLOADS=never

want="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [ ! -f "$dir/.lock-stamp" ] || [ "$(cat "$dir/.lock-stamp")" != "$want" ] || [ ! -x "$dir/bin/python" ]; then
  uv=$(bash tools/uv.sh "$python")
  echo "== $dir: $("$python" --version 2>&1) ($python), packages from $lock"
  start=$SECONDS
  rm -rf "$dir"
  # The stdlib's venv, so the environment has pip: tests/packaging builds the wheel with it.
  "$python" -m venv "$dir"
  "$uv" pip install --quiet --python "$dir/bin/python" --require-hashes -r "$lock"
  printf '%s' "$want" >"$dir/.lock-stamp"
  echo "== $dir: installed in $((SECONDS - start)) s"
fi

if [ "$editable" = "--editable" ]; then
  project=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$dir/.project-stamp" ] || [ "$(cat "$dir/.project-stamp")" != "$project" ]; then
    uv=$(bash tools/uv.sh "$python")
    "$uv" pip install --quiet --python "$dir/bin/python" --no-deps --no-build-isolation -e .
    printf '%s' "$project" >"$dir/.project-stamp"
  fi
fi
