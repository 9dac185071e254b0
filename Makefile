# The hub's two entry points are `make demo` and `make test`; each builds what it needs first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-change test bench up venv system-packages lock clean

# Debian packages the test suite needs (a real OpenSSH server for the SFTP tests).
system-packages:
	@command -v /usr/sbin/sshd >/dev/null 2>&1 || { \
	  echo "installing openssh-server (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; }

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
