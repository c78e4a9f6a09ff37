# Two commands matter: `make demo` (the local twin on the nine-stage scenario) and
# `make test` (every check). Both build what they need, starting with .venv.
# Every Python package comes from a lockfile (requirements/*.txt, exact versions and hashes);
# `make lock` regenerates them (tools/lock.sh).
SHELL := /bin/bash
# The checks run on Python 3.11 (pyenv's or the system's; else python3), the control plane's
# tests also on 3.13 (the Lambda runtime), the worker's on 3.9 (the hosts'): tools/on-python.sh.
PYTHON ?= $(shell bash tools/find-python.sh 3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
LOCK := requirements/dev.txt
export AWS_DEFAULT_REGION ?= eu-west-1
export POWERTOOLS_METRICS_DISABLED ?= true
# The tests find the tools the lock installs (shellcheck, moto_server, locust) on PATH, as a
# developer with the venv activated does.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: all demo test lint typecheck template-check unit pytest pytest-py313 nginx bench lock clean venv

all: test

# tools/venv.sh keeps its own stamps (the lock's digest, the interpreter's version, pyproject's
# digest) and prints nothing when .venv is up to date, so it runs every time: a second stamp
# here would miss a change of interpreter.
venv:
	@bash tools/venv.sh $(VENV) $(PYTHON) $(LOCK) --editable

# Regenerate the lockfiles from pyproject.toml and requirements/*.in (uv, from .venv-uv):
# `make lock LOCK_ARGS="--upgrade"` moves every package to its newest allowed version.
lock:
	PYTHON=$(PYTHON) bash tools/lock.sh

# One run (table and chart), then a short envelope: 8 runs with their own seeds, phases and
# modelled parameters (the full one: --runs 50). The run's verdict is the demo's exit code.
demo: venv
	$(PY) -m simulator run scenarios/nine-stage.yaml --out out/nine-stage
	$(PY) -m simulator sweep scenarios/nine-stage.yaml --runs 8 --min-pass-rate 0 --out out/nine-stage-envelope

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: venv
	$(PY) -m mypy functions simulator awsfake fleetctl fleet_template worker benchmarks loadtest

# cfn-lint, sam validate --lint and checkov, each in its own virtual environment from its own
# lockfile (checkov pins a boto3 that clashes with aws-sam-cli). Also shellcheck on worker/ and tools/.
template-check: venv
	PYTHON=$(PYTHON) bash tools/check-template.sh

# The worker, boot-script and load-test tests run a real nginx: installed with apt when we are
# root, else make stops with the command to run.
nginx:
	@bash tools/ensure-nginx.sh

# The unit tests only (tests/unit: the pure core), for a quick loop.
unit: venv
	$(PY) -m pytest tests/unit

# Every test, with the coverage gate over every shipped package (pyproject.toml's
# [tool.coverage.run]): everything on 3.11, but the worker's tests (tests/worker, and
# tests/userdata, which runs it as its systemd units do) on 3.9, as on the hosts.
WORKER_TESTS := tests/worker tests/userdata
pytest: venv nginx
	rm -f .coverage .coverage.*
	$(PY) -m coverage run -m pytest $(addprefix --ignore=,$(WORKER_TESTS))
	bash tools/on-python.sh 3.9 .venv-py39 requirements/worker-py39.txt --else-venv $(VENV) -- \
		python -m coverage run -m pytest $(WORKER_TESTS)
	$(PY) -m coverage combine --quiet
	$(PY) -m coverage report --fail-under=90

# The control plane's tests (everything that runs functions/) on the Lambda runtime's Python.
PY313_TESTS := tests/unit tests/integration tests/template tests/fleetctl tests/simulator
pytest-py313: venv
	bash tools/on-python.sh 3.13 .venv-py313 $(LOCK) --editable -- python -m pytest -q $(PY313_TESTS)

test: lint typecheck template-check pytest pytest-py313

bench: venv
	$(PY) -m benchmarks.control_plane
	$(PY) -m benchmarks.worker
	$(PY) -m benchmarks.worker --calibrate --json out/worker-calibration.json
	$(PY) -m benchmarks.policies
	$(PY) -m benchmarks.detection_lag scenarios/sawtooth.yaml
	$(PY) -m benchmarks.burst_bars
	$(PY) -m benchmarks.cpu_noise
	$(PY) -m benchmarks.twin

clean:
	rm -rf $(VENV) .venv-* out .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
