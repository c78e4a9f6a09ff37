#!/usr/bin/env bash
# `make nginx`: the worker, boot-script and load-test tests run a real nginx (tests/helpers_worker.py).
# Present: nothing to do. Absent and we are root with apt (CI, this project's machines): install
# Debian's package. Otherwise: stop with the one command to run.
set -euo pipefail
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "== installing nginx (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nginx >/dev/null
  exit 0
fi
echo "make: the worker and boot-script tests need nginx. Install it, then run make again:" >&2
echo "    sudo apt-get install -y nginx" >&2
exit 1
