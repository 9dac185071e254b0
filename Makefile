# The hub's two entry points are `make demo` and `make test`; each builds what it needs first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Playwright drives Debian's chromium (/usr/bin/chromium); never let it download a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: demo demo-change test bench up venv system-packages compose-tools compose-check lock clean screenshots

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

up: venv
	$(PY) -m demo --up

test: venv system-packages
	$(PY) -m pytest

# Re-take the README's screenshots of the pages (docs/images/) in chromium.
screenshots: venv system-packages
	HUB_UPDATE_SCREENSHOTS=1 $(PY) -m pytest tests/browser/test_screenshots.py -q

# The benchmark suite (hub vs protocol ceiling, ledger, transports): one table; see docs/performance.md.
# BENCH_ARGS="--size small --runs 1" for a quicker look.
bench: venv system-packages
	$(PY) -m bench $(BENCH_ARGS)

# Re-resolve the pinned set from pyproject.toml (run by a person, never by CI).
lock:
	rm -rf /tmp/hub-lock-venv && $(PYTHON) -m venv /tmp/hub-lock-venv
	/tmp/hub-lock-venv/bin/pip install -q -e '.[test,bench]'
	/tmp/hub-lock-venv/bin/pip freeze --exclude-editable > requirements.lock

clean:
	rm -rf var/demo $(VENV)
