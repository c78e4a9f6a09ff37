#!/usr/bin/env bash
# tools/find-python.sh X.Y: print the path of a working Python X.Y, or exit 1.
# Tries pythonX.Y on PATH (a pyenv shim answers only when that version is selected), then
# pyenv's own interpreters ($PYENV_ROOT, by default ~/.pyenv; the newest patch release first),
# then /usr/local/bin and /usr/bin.
set -uo pipefail
want=$1

works() {
  [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]
}

candidates=()
on_path=$(command -v "python$want" 2>/dev/null) && candidates+=("$on_path")
while IFS= read -r found; do
  candidates+=("$found")
done < <(printf '%s\n' "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want".*/bin/python"$want" | sort -rV)
candidates+=("/usr/local/bin/python$want" "/usr/bin/python$want")

for candidate in "${candidates[@]}"; do
  if works "$candidate"; then
    printf '%s\n' "$candidate"
    exit 0
  fi
done
exit 1
