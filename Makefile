# The hub's two entry points are `make demo` and `make test`; each builds what it needs first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Playwright drives Debian's chromium (/usr/bin/chromium); never let it download a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: demo demo-change demo-celery test bench up venv system-packages compose-tools compose-check postgresql redis lock clean screenshots

# The Compose implementation that validates docker/compose.yaml offline (no Docker daemon needed),
# pinned: tests/deploy checks the version.
COMPOSE_VERSION := 1.29.2

# Debian packages the test suite needs: a real OpenSSH server for the SFTP tests, and chromium for
# the browser tests (Playwright drives Debian's chromium; it never downloads a browser).
system-packages:
	@command -v /usr/sbin/sshd >/dev/null 2>&1 || { \
	  echo "installing openssh-server (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; }
	@test -x /usr/bin/chromium || { \
	  echo "installing chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@$(MAKE) --no-print-directory compose-tools

# Debian's docker-compose (validates docker/compose.yaml) and PostgreSQL's client tools (pg_dump and
# pg_restore for the ledger backup/restore test).
compose-tools:
	@{ command -v docker-compose >/dev/null 2>&1 && \
	   docker-compose version --short 2>/dev/null | grep -qx '$(COMPOSE_VERSION)'; } || { \
	  echo "installing docker-compose $(COMPOSE_VERSION) (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    'docker-compose=$(COMPOSE_VERSION)*' >/dev/null; }
	@command -v pg_restore >/dev/null 2>&1 || { \
	  echo "installing postgresql-client (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null; }

# Validate the compose deployment and check it against docs/deploying.md (also part of `make test`).
compose-check: venv compose-tools
	$(PY) -m pytest -q tests/deploy/test_compose.py

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) -m demo

# After `make demo`: one staff change in each back office, synced to the CRM exactly once.
demo-change: venv
	$(PY) -m demo --change-status

# PostgreSQL for the real stack (Airflow's metadata and the ledger): the server given by
# HUB_POSTGRES_URL (or the databases by HUB_AIRFLOW_DATABASE_URL and HUB_DATABASE_URL), else the one
# on 127.0.0.1:5432 or the local socket; where none answers, install it (apt-get) and start it.
postgresql: venv
	@if [ -n "$$HUB_POSTGRES_URL" ] || { [ -n "$$HUB_AIRFLOW_DATABASE_URL" ] && [ -n "$$HUB_DATABASE_URL" ]; } \
	    || $(PY) -m demo.postgres answers >/dev/null 2>&1; then :; else \
	  command -v pg_ctlcluster >/dev/null 2>&1 || { echo "installing postgresql (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }; \
	  echo "starting PostgreSQL"; \
	  for version in $$(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect $$version main start || true; done; \
	  runuser -u postgres -- createuser --superuser "$$(id -un)" 2>/dev/null || true; \
	  $(PY) -m demo.postgres answers; \
	fi

# Redis for the CeleryExecutor (broker): HUB_CELERY_BROKER_URL, else 127.0.0.1:6379; where none
# answers, install redis-server (apt-get) and start it on 127.0.0.1.
redis:
	@if [ -n "$$HUB_CELERY_BROKER_URL" ] || (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then :; else \
	  command -v redis-server >/dev/null 2>&1 || { echo "installing redis-server (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }; \
	  echo "starting Redis on 127.0.0.1:6379"; \
	  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes >/dev/null; sleep 1; \
	fi

# The real stack, supervised, until Ctrl-C: `make up` (LocalExecutor) or `make up EXECUTOR=celery`.
EXECUTOR ?= local
up: venv postgresql $(if $(filter celery,$(EXECUTOR)),redis)
	$(PY) -m demo --up --executor $(EXECUTOR)

# The demo flow on the real stack with the CeleryExecutor and two workers; stops everything after.
demo-celery: venv postgresql redis
	$(PY) -m demo --celery

test: venv system-packages
	$(PY) -m pytest

# Re-take the README's screenshots of the pages (docs/images/) in chromium.
screenshots: venv system-packages
	HUB_UPDATE_SCREENSHOTS=1 $(PY) -m pytest tests/browser/test_screenshots.py tests/browser/test_reconciliation_in_browser.py -q

# The benchmark suite (hub vs protocol ceiling, ledger, transports): one table; see docs/performance.md.
# BENCH_ARGS="--size small --runs 1" for a quicker look.
bench: venv system-packages
	$(PY) -m bench $(BENCH_ARGS)

# Re-resolve the pinned set from pyproject.toml (run by a person, never by CI).
lock:
	rm -rf /tmp/hub-lock-venv && $(PYTHON) -m venv /tmp/hub-lock-venv
	/tmp/hub-lock-venv/bin/pip install -q -e '.[test,bench]'
	/tmp/hub-lock-venv/bin/pip freeze --exclude-editable > requirements.lock

# Removes the demos' state, including the real stack's PostgreSQL databases (hub_*, hub_celery_*).
clean:
	-test -x $(PY) && $(PY) -m demo.postgres drop hub && $(PY) -m demo.postgres drop hub_celery
	rm -rf var/demo var/up var/celery $(VENV)
