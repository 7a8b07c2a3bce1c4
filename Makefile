# Hlekkr: `make run` starts the embedded install (no servers needed); `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
WEB_CONCURRENCY ?= 2
WORKER_CONCURRENCY ?= 2
HLEKKR_VAR_DIR ?= var

.PHONY: run test reliability lint typecheck check conformance venv migrate worker web bench clean

# Installs exactly the lock (every distribution, hash-checked), not a fresh resolution of requirements-dev.txt:
# a new release of an unpinned transitive dependency must not change what CI tests.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --noinput

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_demo_users
	$(PY) manage.py collectstatic --noinput -v 0
	@echo "Hlekkr:     http://$(HOST):$(PORT)/"
	@echo "API docs:   http://$(HOST):$(PORT)/api/docs/"
	@echo "Dashboard:  http://$(HOST):$(PORT)/dashboard/"
	@echo "Admin:      http://$(HOST):$(PORT)/admin/"
	@echo "Health:     http://$(HOST):$(PORT)/health/ready"
	@# The worker runs under scripts/supervise.py: a worker that dies (killed, or kombu giving up during a
	@# broker outage) is started again within seconds, as systemd's Restart=always does in production.
	@trap 'kill 0' INT TERM EXIT; \
	$(PY) scripts/supervise.py --name worker -- \
	    $(VENV)/bin/celery -A hlekkr worker -B -Q interactive,default,batch,bedrock,webhooks,maintenance \
	    --concurrency $(WORKER_CONCURRENCY) --loglevel INFO \
	    --schedule $(HLEKKR_VAR_DIR)/celerybeat-schedule & \
	PROMETHEUS_MULTIPROC_DIR=$(abspath $(HLEKKR_VAR_DIR))/prometheus \
	$(VENV)/bin/gunicorn hlekkr.wsgi:application -c hlekkr/gunicorn.conf.py --bind $(HOST):$(PORT) \
	    --workers $(WEB_CONCURRENCY) & \
	wait

test: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q -m "not reliability" $(PYTEST_ARGS)

# Fault injection against real processes (tests/reliability, README "Reliability"): bounded counts here,
# `python scripts/fault_trials.py` for 100 trials. Alone, so its timings are not the suite's CPU contention.
reliability: venv
	$(PY) -m pytest -q -m reliability tests/reliability $(PYTEST_ARGS)

conformance: venv
	$(PY) -m pytest -q -m conformance tests/conformance $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy .

check: lint typecheck test

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
