"""docker/init.sh, the `init` service: runs its steps in order, is idempotent, and stops the stack
(non-zero exit, reason named) on a missing setting, an inconsistent ledger or a missing `crm`
Connection. Airflow's own commands are a stub here (the image has the FAB auth manager, this
venv does not); the hub's commands and the ledger are real.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from hub.ledger import consistency, db

REPO = Path(__file__).resolve().parents[2]
INIT = REPO / "docker" / "init.sh"
PASSWORD = "init-test-admin-password"

AIRFLOW_STUB = """#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
"""
# Stands in for `hub users` (another part of the hub provides it); every other subcommand is the
# real hub CLI.
HUB_SHIM = """#!/usr/bin/env bash
if [[ "${1:-}" == users ]]; then
  [[ "${2:-}" == --help ]] && exit 0
  echo "users $*" >> "$STUB_LOG"
  read -r password; echo "stdin:$password" >> "$STUB_LOG"
  if [[ -e "$STUB_LOG.user" ]]; then echo "account $3 already exists" >&2; exit 1; fi
  touch "$STUB_LOG.user"; exit 0
fi
exec "$REAL_HUB" "$@"
"""


def stub(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)


def run_init(tmp_path: Path, *, with_users: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub(bin_dir, "airflow", AIRFLOW_STUB)
    if with_users:
        stub(bin_dir, "hub", HUB_SHIM)
    base = {
        "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
        "HOME": str(tmp_path), "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"],
        "STUB_LOG": str(tmp_path / "calls.log"), "REAL_HUB": str(Path(sys.executable).parent / "hub"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow@db/airflow",
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "AIRFLOW_ADMIN_USERNAME": "admin", "AIRFLOW_ADMIN_PASSWORD": PASSWORD,
        "HUB_ADMIN_USERNAME": "officer", "HUB_ADMIN_PASSWORD": PASSWORD,
        "AIRFLOW_CONN_CRM": json.dumps({"conn_type": "http", "host": "http://crm.example",
                                        "password": "crm-token-for-init"}),
    }
    base.update(env)
    return subprocess.run(["bash", str(INIT)], env={k: v for k, v in base.items() if v is not None},
                          capture_output=True, text=True, timeout=240)


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_init_prepares_everything_in_order_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    first = run_init(tmp_path, with_users=True)
    assert first.returncode == 0, first.stdout + first.stderr
    steps = [line for line in first.stdout.splitlines() if line.startswith("[init] ") and "/5" in line]
    assert [s.split()[1] for s in steps] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    log = calls(tmp_path)
    assert log[0] == "db migrate"
    assert log[1].startswith("users create --role Admin --username admin")
    assert log[2] == "users users add officer --role admin --password-stdin"
    assert log[3] == f"stdin:{PASSWORD}", "the hub password goes on stdin, not the command line"
    assert PASSWORD not in log[2]
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    report = consistency.check(url)
    assert report.consistent and report.revision == report.head, "the ledger is migrated"
    assert "ledger consistent" in first.stdout and "crm: ok" in first.stdout
    assert "crm-token-for-init" not in first.stdout + first.stderr

    second = run_init(tmp_path, with_users=True)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "exists; unchanged" in second.stdout


def test_a_missing_setting_stops_init_before_it_does_anything(tmp_path: Path) -> None:
    result = run_init(tmp_path, HUB_ADMIN_PASSWORD=None)
    assert result.returncode != 0
    assert "HUB_ADMIN_PASSWORD is not set" in result.stderr
    assert calls(tmp_path) == []


def test_an_inconsistent_ledger_stops_the_stack(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    db.migrate(url)
    with db.engine(url).begin() as conn:
        conn.execute(sa.text("INSERT INTO cases (crm_id, version, case_type, source, state, "
                             "received_at) VALUES ('CRM-1', 1, 't', 'pull', 'lost', CURRENT_TIMESTAMP)"))
    db.engine(url).dispose()
    result = run_init(tmp_path)
    assert result.returncode != 0
    assert "case-state" in result.stdout and "the ledger is not consistent" in result.stderr
    assert "5/5" not in result.stdout


def test_a_missing_crm_connection_stops_the_stack_and_a_missing_system_does_not(tmp_path: Path) -> None:
    result = run_init(tmp_path, AIRFLOW_CONN_CRM=None)
    assert result.returncode != 0
    assert "crm: missing and required" in result.stdout
    assert "revenues_northgate: missing: its DAGs fail" in result.stdout
    assert "fix the Connections" in result.stderr
    if "users" not in subprocess.run([str(Path(sys.executable).parent / "hub"), "--help"],
                                     capture_output=True, text=True).stdout:
        # A build without `hub users` (before that command is merged) says so and goes on.
        assert "no hub account created" in result.stdout
