"""The licensing simulator on SQLite, PostgreSQL and MariaDB: schema, reference data, staff
actions."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import insert

from connectors.licensing.operations import OPERATIONS
from simulators.licensing import sample
from simulators.licensing.__main__ import main
from simulators.licensing.backoffice import LicensingBackOffice, utc_now
from tests.support.databases import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL, fresh_database

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"),
                        pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql"),
                        pytest.param("mariadb", marks=pytest.mark.mariadb, id="mariadb")])
def office(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LicensingBackOffice]:
    """A freshly installed licensing system with the demo premises."""
    def installed(url: str) -> Iterator[LicensingBackOffice]:
        backoffice = LicensingBackOffice(url)
        backoffice.seed_demo()
        try:
            yield backoffice
        finally:
            backoffice.close()

    if request.param == "sqlite":
        yield from installed(f"sqlite:///{tmp_path / 'uniform.db'}")
        return
    admin = POSTGRES_ADMIN_URL if request.param == "postgresql" else MARIADB_ADMIN_URL
    with fresh_database(admin, "lic_sim") as url:
        yield from installed(url)


def _receive(office: LicensingBackOffice, ref: str, ext: str) -> None:
    """An application arriving (as the connector would write it)."""
    now = utc_now()
    with office.engine.begin() as conn:
        conn.execute(insert(office.application).values(
            APP_REF=ref, EXT_REF=ext, LIC_TYPE="PREM", APPLICANT_NAME="A N Other",
            PREMISES_REF="PR00001", STATUS="RECEIVED", RECEIVED_DATE=now, LAST_UPDATED=now))


def test_install_and_seed_are_idempotent(office: LicensingBackOffice) -> None:
    office.seed_demo()
    assert office.seed_reference() == 0
    assert office.applications_created() == 0


def test_decide_updates_status_decision_date_and_last_updated(office: LicensingBackOffice) -> None:
    _receive(office, "26/00001/PREM", "k-1")
    before = office.find_application("26/00001/PREM")
    assert before is not None
    when = office.decide("26/00001/PREM", "GRANTED")
    after = office.find_application("26/00001/PREM")
    assert after is not None
    assert after["STATUS"] == "GRANTED" and after["DECISION_DATE"] == when.date()
    assert after["LAST_UPDATED"] > before["LAST_UPDATED"]
    assert after["LAST_UPDATED"] == when, "microseconds survive (DATETIME(6) on MariaDB)"
    office.decide("26/00001/PREM", "FURTHER_INFO")
    assert office.find_application("26/00001/PREM")["DECISION_DATE"] is None


def test_decide_refuses_unknown_applications_and_decisions(office: LicensingBackOffice) -> None:
    with pytest.raises(KeyError):
        office.decide("26/99999/PREM", "GRANTED")
    _receive(office, "26/00002/PREM", "k-2")
    with pytest.raises(ValueError):
        office.decide("26/00002/PREM", "MAYBE")


def test_decide_pending_decides_only_received(office: LicensingBackOffice) -> None:
    for i in range(1, 7):
        _receive(office, f"26/0000{i}/PREM", f"k-{i}")
    office.decide("26/00001/PREM", "REFUSED")
    decided = office.decide_pending()
    assert [ref for ref, _ in decided] == [f"26/0000{i}/PREM" for i in range(2, 7)]
    assert {d for _, d in decided} == {"GRANTED", "FURTHER_INFO", "REFUSED"}
    assert office.applications("RECEIVED") == []
    assert office.decide_pending() == []


def test_ext_ref_is_unique(office: LicensingBackOffice) -> None:
    _receive(office, "26/00001/PREM", "same-key")
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        _receive(office, "26/00002/PREM", "same-key")


def test_cli_installs_seeds_and_decides(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run = subprocess.run([sys.executable, "-m", "simulators.licensing", "--url", url,
                          "--seed-demo"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"premises_added": len(sample.premises()), "decided": [],
                                      "applications": 0}
    office = LicensingBackOffice(url)
    _receive(office, "26/00001/PREM", "k-1")
    office.close()
    assert main(["--url", url, "--decide-pending"]) == 0


def test_sample_cases_shape() -> None:
    cases = sample.sample_cases()
    assert len(cases) == 12 and len({c["id"] for c in cases}) == 12
    assert {c["case_type"] for c in cases} == {"licence_application"}
    kinds = {c["data"]["licence_kind"] for c in cases}
    assert {f"licence.{k}" for k in kinds} == set(OPERATIONS)
    known = {p["premises_ref"] for p in sample.premises()}
    for case in cases:
        data = case["data"]
        assert data["applicant"]["name"] and date.fromisoformat(data["applicant"]["date_of_birth"])
        assert data["payment"]["reference"]
        if "premises" in data and case["id"] not in sample.REFUSED_CASES:
            assert data["premises"]["reference"] in known
    assert set(sample.REFUSED_CASES) <= {c["id"] for c in cases}
