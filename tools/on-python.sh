#!/usr/bin/env bash
# tools/on-python.sh X.Y DIR LOCK [--editable] [--else-venv VENV] -- COMMAND...
# Runs COMMAND with DIR/bin first on PATH (so `python` is DIR's), DIR being a virtual
# environment of Python X.Y made from LOCK by tools/venv.sh (--editable: with the project).
# The interpreter comes from tools/find-python.sh (PATH, pyenv, /usr/bin). When the machine has
# no Python X.Y: under CI=true the run fails; otherwise it says so, then runs COMMAND in VENV
# (--else-venv) instead, or skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$1 dir=$2 lock=$3
shift 3
editable="" fallback=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in
    --editable) editable=--editable ;;
    --else-venv) fallback=$2; shift ;;
    *) echo "on-python: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "${1:-}" = "--" ] && shift
absolute() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }

if python=$(bash tools/find-python.sh "$version"); then
  bash tools/venv.sh "$dir" "$python" "$lock" $editable
  echo "== Python $version ($python): $*"
  PATH="$(absolute "$dir")/bin:$PATH" VIRTUAL_ENV="$(absolute "$dir")" "$@"
  exit
fi

where="not on PATH, nor in ${PYENV_ROOT:-$HOME/.pyenv}/versions, /usr/local/bin or /usr/bin"
if [ "${CI:-}" = "true" ]; then
  echo "on-python: FAILED: no Python $version on this machine ($where); CI runs on it" >&2
  exit 1
fi
if [ -n "$fallback" ]; then
  echo "on-python: no Python $version on this machine ($where): running on $("$fallback/bin/python" --version) in $fallback instead (CI=true fails here): $*" >&2
  PATH="$(absolute "$fallback")/bin:$PATH" VIRTUAL_ENV="$(absolute "$fallback")" "$@"
  exit
fi
echo "on-python: SKIPPED: no Python $version on this machine ($where): not run: $*" >&2
