#!/usr/bin/env bash
# `make template-check`: static checks of template.yaml and the shell scripts, on a fresh machine
# with only python3 (and shellcheck, which .ci/run installs).
#   1. cfn-lint template.yaml                       (.venv-sam)
#   2. sam validate --lint, offline                 (.venv-sam)
#   3. checkov, 0 failed checks                     (.venv-checkov: checkov pins a boto3 that
#                                                    clashes with aws-sam-cli, so its own venv)
#   4. shellcheck worker/*.sh (the boot script the worker layer carries) and tools/*.sh
# The user-data stub inside template.yaml is shellchecked by tests/userdata (raw and rendered).
# The venvs are created on first use (about 45 s each, measured) and cached with a stamp file
# that records the pinned versions, so reruns start at once.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SAM_VERSION=${SAM_VERSION:-1.170.0}
CHECKOV_VERSION=${CHECKOV_VERSION:-3.3.30}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-eu-west-1}
export SAM_CLI_TELEMETRY=0
export BC_SKIP_MAPPING=TRUE  # checkov: no download of the Bridgecrew mapping

log() { printf '== %s\n' "$*"; }

# ensure_venv DIR STAMP_CONTENT PACKAGE...
ensure_venv() {
  local dir=$1 want=$2
  shift 2
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ] && [ -x "$dir/bin/python" ]; then
    return 0
  fi
  log "installing $* into $dir"
  local start=$SECONDS errlog
  errlog=$(mktemp)
  rm -rf "$dir"
  if ! { "$PYTHON" -m venv "$dir" &&
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip &&
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"; } >"$errlog" 2>&1; then
    cat "$errlog" >&2
    rm -f "$errlog"
    echo "check-template: installing $* failed" >&2
    return 1
  fi
  rm -f "$errlog"
  printf '%s' "$want" >"$dir/.stamp"
  log "installed in $((SECONDS - start)) s"
}

ensure_venv .venv-sam "aws-sam-cli==$SAM_VERSION" "aws-sam-cli==$SAM_VERSION"
ensure_venv .venv-checkov "checkov==$CHECKOV_VERSION" "checkov==$CHECKOV_VERSION"

# The contract tests (tests/template, run by `make pytest`) translate the template with
# samtranslator in the project venv; pyproject.toml does not list it (yet), so add it here.
if [ -x .venv/bin/python ] && ! .venv/bin/python -c "import samtranslator" 2>/dev/null; then
  log "installing aws-sam-translator into .venv (for tests/template)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    "aws-sam-translator==$(.venv-sam/bin/python -c 'import samtranslator; print(samtranslator.__version__)')" \
    >/dev/null 2>&1 || { echo "check-template: installing aws-sam-translator into .venv failed" >&2; exit 1; }
fi

status=0

# Every check runs, failed or not: `|| status=1` keeps set -e from stopping at the first.
log "cfn-lint template.yaml"
.venv-sam/bin/cfn-lint template.yaml || status=1

log "sam validate --lint"
.venv-sam/bin/sam validate --lint --template-file template.yaml || status=1

log "checkov"
checkov_out=$(mktemp)
if ! .venv-checkov/bin/checkov -f template.yaml --framework cloudformation --skip-download \
  --compact --quiet >"$checkov_out" 2>&1; then
  status=1
fi
cat "$checkov_out"
rm -f "$checkov_out"

shopt -s nullglob
scripts=(worker/*.sh tools/*.sh)
if [ ${#scripts[@]} -gt 0 ]; then
  log "shellcheck ${scripts[*]}"
  if command -v shellcheck >/dev/null; then
    shellcheck "${scripts[@]}" || status=1
  else
    echo "check-template: shellcheck not installed (.ci/run installs it)" >&2
    status=1
  fi
fi

if [ "$status" -ne 0 ]; then
  echo "check-template: FAILED" >&2
else
  log "template checks passed"
fi
exit "$status"
