#!/usr/bin/env bash
# tools/uv.sh [PYTHON]: print the path of the uv that requirements/uv.txt pins, first installing
# it into .venv-uv (pip, hash-checked) when that venv is missing or its lock changed.
# uv installs every other lock (tools/venv.sh): pip took about 3 minutes for requirements/dev.txt
# on the 2-core machine, uv 7 s (measured, cold cache). uv is one self-contained binary, so the
# Python that installs it does not matter afterwards and is not part of the stamp.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
dir=.venv-uv lock=requirements/uv.txt

want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ ! -f "$dir/.lock-stamp" ] || [ "$(cat "$dir/.lock-stamp")" != "$want" ] || [ ! -x "$dir/bin/uv" ]; then
  echo "== $dir: uv from $lock" >&2
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock" >&2
  printf '%s' "$want" >"$dir/.lock-stamp"
fi
printf '%s\n' "$PWD/$dir/bin/uv"
