"""End to end in real Airflow: the demo's DAG runs (``dag.test()``) against the simulators, twice.

This is the closed loop an operator relies on: CRM cases reach each back office, outcomes and
refusals come back to the CRM once, refusals become work items, a later staff change reaches the CRM
once, and a second run applies nothing twice.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(600)]


def systems(summary: dict) -> dict:
    """The per-system part of summary.json (without its ``reconciliation`` section)."""
    return {k: v for k, v in summary.items() if k != "reconciliation"}


def run_demo(home: Path, *args: str, result: str = "summary.json") -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HUB_"))}
    env["HUB_DEMO_HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-m", "demo", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((home / result).read_text()), proc.stdout


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, str, Path]:
    home = tmp_path_factory.mktemp("demo")
    first, _ = run_demo(home)
    second, output = run_demo(home)
    return first, second, output, home


def test_every_system_confirms_refuses_and_writes_back(two_runs) -> None:
    first, _, _, _ = two_runs
    for system, figures in systems(first).items():
        assert figures["confirmed"] > 0, system
        assert figures["rejected"] > 0, system
        assert figures["written_back"] == figures["confirmed"] + figures["rejected"], system
        assert figures["work_items"] == figures["rejected"], system
        assert figures["pending"] == figures["awaiting"] == figures["failed"] == 0, system
        assert figures["backoffice_effects"] > 0, system


def test_a_later_staff_change_reaches_the_crm_once(two_runs) -> None:
    first, second, _, _ = two_runs
    for system in systems(first):
        assert first[system]["updates_written_back"] == 1, system
        assert second[system]["updates_written_back"] == 1, system


def test_a_status_change_after_the_demo_reaches_the_crm_exactly_once(two_runs) -> None:
    first, *_, home = two_runs
    report, _ = run_demo(home, "--change-status", result="status_change.json")
    assert set(report) == set(systems(first)), "one staff change in every back office"
    for system, row in report.items():
        assert row["written_back_first_sync"] == 1, (system, row)
        assert row["written_back_second_sync"] == 0, (system, row)
        assert row["crm_status_updates_for_case"] == 1, (system, row)


def test_a_second_run_applies_nothing_twice(two_runs) -> None:
    first, second, output, _ = two_runs
    for system in systems(first):
        again = second[system]["this_run"]
        assert again["sent"] == 0 and again["attempts"] == 0, system
        assert second[system]["backoffice_effects"] == first[system]["backoffice_effects"], system
        assert again["written_back"] == again.get("updates_written_back", 0) == 0, system
    assert "0 sent" in output


def test_reconciliation_finds_each_seeded_drift_once_heals_the_safe_ones_then_nothing_new(
        two_runs) -> None:
    first, second, output, home = two_runs
    from demo.reconciliation import all_seeded

    seeded = all_seeded(home)
    assert set(seeded) == {"missing_in_backoffice", "unknown_in_backoffice", "field_mismatch",
                           "status_not_in_crm", "writeback_missing", "stuck", "unmapped_case"}
    assert first["reconciliation"]["found"] == {code: 1 for code in seeded}
    assert first["reconciliation"]["healed"] == 4      # write-back, stuck, missing, unmapped
    assert first["reconciliation"]["work_items"] == 3  # unknown, field, status: their team's
    assert second["reconciliation"]["found"] == {}, "a second run finds nothing new"
    assert second["reconciliation"]["healed"] == 0 and second["reconciliation"]["work_items"] == 0
    assert set(second["reconciliation"]["known"]) == {"unknown_in_backoffice", "field_mismatch",
                                                      "status_not_in_crm"}
    assert "Reconciliation (CRM, ledger and back offices" in output


def test_the_runs_are_real_airflow_dag_runs(two_runs) -> None:
    *_, home = two_runs
    with sqlite3.connect(home / "airflow" / "airflow.db") as conn:
        runs = dict(conn.execute("select dag_id, count(*) from dag_run where state = 'success' "
                                 "group by dag_id").fetchall())
        mapped = conn.execute("select count(*) from task_instance where dag_id = 'revenues_northgate' "
                              "and task_id = 'send_batches' and map_index >= 0").fetchone()[0]
    assert runs.get("crm_intake", 0) >= 2 and runs.get("crm_writeback", 0) >= 4
    assert runs.get("revenues_northgate", 0) >= 2
    assert mapped >= 1, "dispatch ran as mapped lane tasks"


def test_the_demo_covers_every_back_office_and_creates_the_staff_accounts(two_runs) -> None:
    first, _, output, home = two_runs
    assert set(systems(first)) == {"revenues_northgate", "benefits_academy", "licensing_uniform",
                          "waste_bartec", "housing_repairs"}
    accounts = json.loads((home / "accounts.json").read_text())
    names = {"rev.officer", "waste.officer", "ops.analyst", "hub.admin"}
    assert set(accounts) == names and all(a["password"] for a in accounts.values())
    assert (home / "accounts.json").stat().st_mode & 0o077 == 0, "passwords readable by others"
    with sqlite3.connect(home / "hub.db") as conn:
        in_ledger = {r[0] for r in conn.execute("select username from accounts")}
    assert names <= in_ledger
    assert "staff accounts for the hub's pages" in output


PERSONAL_KEYS = {"name", "email", "phone", "contact_email", "account_name", "sort_code",
                 "account_number", "date_of_birth", "line1", "driving_licence_number", "holder"}


def personal_values(value: object, key: str = "") -> set[str]:
    """Every personal value in a case's data (names, contact details, bank details, addresses)."""
    if isinstance(value, dict):
        return set().union(*(personal_values(v, k) for k, v in value.items())) if value else set()
    if isinstance(value, list):
        return set().union(*(personal_values(v, key) for v in value)) if value else set()
    return {str(value)} if key in PERSONAL_KEYS and len(str(value)) >= 6 else set()


def test_no_personal_data_in_the_logs(two_runs) -> None:
    *_, home = two_runs
    from simulators.world import ctax_accounts, demo_cases

    logs = "".join(p.read_text(errors="replace") for p in (home / "logs").glob("*.log"))
    logs += "".join(p.read_text(errors="replace") for p in (home / "airflow" / "logs").rglob("*")
                    if p.is_file())
    values = set().union(*(personal_values(c["data"]) for c in demo_cases()))
    values |= {a["holder"] for a in ctax_accounts()}
    assert len(values) > 100, "the check looks at a meaningful set of values"
    leaked = sorted(v for v in values if v in logs)
    assert not leaked, f"{len(leaked)} personal values found in demo and task logs"
