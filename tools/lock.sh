#!/usr/bin/env bash
# `make lock`: regenerate the lockfiles every install uses, with exact versions and hashes.
#   requirements/dev.txt         pyproject.toml's dependencies + [dev], one file for every Python
#                                from 3.11 up (3.11 for the checks, 3.13 for the Lambda runtime)
#   requirements/worker-py39.txt the worker's tests on the hosts' Python 3.9 (worker-py39.in)
#   requirements/sam.txt         aws-sam-cli for tools/check-template.sh (sam.in)
#   requirements/checkov.txt     checkov for tools/check-template.sh (checkov.in)
#   requirements/uv.txt          uv itself (uv.in), which writes these files and installs them
#                                (tools/uv.sh, tools/venv.sh)
# The template tests translate with the samtranslator that `sam validate` uses: dev.txt is
# constrained to sam.txt's aws-sam-translator (requirements/dev-constraints.txt).
# Upgrading: bump a bound in pyproject.toml or an .in file, or pass uv's --upgrade /
# --upgrade-package NAME through: `make lock LOCK_ARGS="--upgrade-package boto3"`.
set -euo pipefail
cd "$(dirname "$0")/.."

UV=${UV:-$(bash tools/uv.sh "${PYTHON:-python3}")}
read -r -a extra <<<"${LOCK_ARGS:-}"

compile() {
  "$UV" pip compile --quiet --generate-hashes --custom-compile-command "make lock" \
    ${extra[@]+"${extra[@]}"} "$@"
}

# Universal: one file for every Python from the version given up, on any platform.
compile --universal --python-version 3.9 requirements/uv.in -o requirements/uv.txt
compile --universal --python-version 3.11 requirements/sam.in -o requirements/sam.txt
compile --universal --python-version 3.11 requirements/checkov.in -o requirements/checkov.txt
# Python 3.9 only (what the hosts run), Linux.
compile --python-version 3.9 --python-platform linux requirements/worker-py39.in -o requirements/worker-py39.txt

{
  echo "# Written by make lock (tools/lock.sh): sam.txt's samtranslator, for dev.txt."
  grep -E '^aws-sam-translator==' requirements/sam.txt | cut -d' ' -f1
} >requirements/dev-constraints.txt
compile --universal --python-version 3.11 pyproject.toml --extra dev --constraint requirements/dev-constraints.txt \
  -o requirements/dev.txt

echo "lock: requirements/{dev,worker-py39,sam,checkov,uv}.txt written"
