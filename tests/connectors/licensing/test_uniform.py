"""UniformConnector behaviour beyond the contract: the licensing system's rules, decisions read
back, the configurable schema map and real lock timeouts, on SQLite, PostgreSQL and MariaDB."""
from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from connectors.base import Command, OutcomeStatus
from connectors.errors import PermanentError
from connectors.licensing.schema import SchemaMap
from connectors.licensing.uniform import UniformConfig, UniformConnector
from simulators.licensing.backoffice import LicensingBackOffice
from simulators.licensing.sample import REFUSED_CASES, sample_cases
from tests.connectors.licensing.conftest import UniformHarness


def _years_ago(years: int, days: int = 0) -> str:
    today = date.today()
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        born = today.replace(year=today.year - years, day=28)
    return (born + timedelta(days=days)).isoformat()


def _driver(h: UniformHarness, n: int, born: str, **extra: Any) -> Command:
    payload = {"applicant": h.applicant(n, born=born), "driving_licence_number": "OKAFO801218K99AB",
               "payment_ref": f"PAY-{h.token}-D{n}", **extra}
    return h.make(f"driver-{n}", "licence.taxi_driver", **payload)


def test_application_lands_in_the_vendor_tables(harness: UniformHarness) -> None:
    command = harness.command(20)
    [outcome] = harness.connector().submit([command])
    assert outcome.status is OutcomeStatus.CONFIRMED
    row = harness.office.find_application(outcome.reference)
    assert row is not None
    assert row["EXT_REF"] == command.key and row["SOURCE_REF"] == command.case_ref
    assert row["LIC_TYPE"] == "PREM" and row["STATUS"] == "RECEIVED"
    assert row["PREMISES_REF"] == "PR00001" and row["FEE_PENCE"] == 31500
    assert row["FULL_NAME"] == command.payload["applicant"]["name"]
    assert row["DATE_OF_BIRTH"] == date(1980, 2, 3)
    assert outcome.reference.endswith("/PREM") and outcome.details["status"] == "RECEIVED"


def test_driver_under_minimum_age_is_refused_naming_the_field(harness: UniformHarness) -> None:
    young = _driver(harness, 1, _years_ago(21, days=1))
    exactly = _driver(harness, 2, _years_ago(21))
    before = harness.effects()
    refused, accepted = harness.connector().submit([young, exactly])
    assert refused.status is OutcomeStatus.REJECTED
    assert refused.field == "applicant.date_of_birth" and refused.code == "under-minimum-age"
    assert accepted.status is OutcomeStatus.CONFIRMED
    assert harness.effects() - before == 1


def test_missing_payment_reference_is_refused_when_a_fee_is_due(harness: UniformHarness) -> None:
    command = harness.make("no-pay", "licence.street_trading", applicant=harness.applicant(30),
                           pitch="Market Place, pitch 9", commodities="Books")
    [outcome] = harness.connector().submit([command])
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.field == "payment_ref" and "payment_ref" in (outcome.message or "")


def test_no_fee_no_payment_reference_needed(harness: UniformHarness) -> None:
    harness.office.set_licence_type("STR", FEE_PENCE=0)
    try:
        command = harness.make("free", "licence.street_trading", applicant=harness.applicant(31),
                               pitch="Riverside, pitch 2", commodities="Ice cream")
        [outcome] = harness.connector().submit([command])
    finally:
        harness.office.set_licence_type("STR", FEE_PENCE=40000)
    assert outcome.status is OutcomeStatus.CONFIRMED, outcome


def test_a_payment_reference_pays_for_one_application(harness: UniformHarness) -> None:
    first = harness.command(40)
    second = harness.make(41, "licence.premises", applicant=harness.applicant(41),
                          premises_ref="PR00002", activities=["late_night_refreshment"],
                          payment_ref=first.payload["payment_ref"])
    outcomes = harness.connector().submit([first, second])
    assert [o.status for o in outcomes] == [OutcomeStatus.CONFIRMED, OutcomeStatus.REJECTED]
    assert outcomes[1].field == "payment_ref" and outcomes[1].code == "payment-already-used"


def test_closed_licence_type_is_refused(harness: UniformHarness) -> None:
    harness.office.set_licence_type("ANI", ACTIVE="N")
    try:
        command = harness.make("closed", "licence.animal_establishment",
                               applicant=harness.applicant(50), premises_ref="PR00004",
                               activity="dog_breeding", payment_ref=f"PAY-{harness.token}-50")
        [outcome] = harness.connector().submit([command])
    finally:
        harness.office.set_licence_type("ANI", ACTIVE="Y")
    assert outcome.status is OutcomeStatus.REJECTED and outcome.code == "licence-type-closed"


def test_invalid_payload_is_refused_before_sending(harness: UniformHarness) -> None:
    bad = harness.make("bad", "licence.private_hire_driver",
                       applicant={"name": "Someone", "date_of_birth": "1980-01-01"},
                       driving_licence_number="not-a-licence")
    before = harness.effects()
    [outcome] = harness.connector().submit([bad])
    assert outcome.status is OutcomeStatus.REJECTED and outcome.field == "driving_licence_number"
    assert harness.effects() == before


def test_decisions_come_back_once_each_and_inserts_do_not(harness: UniformHarness) -> None:
    connector = harness.connector()
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    command = harness.command(60)
    [created] = connector.submit([command])
    assert [u for u in connector.fetch_updates(since) if u.reference == created.reference] == []
    harness.office.decide(created.reference, "FURTHER_INFO")
    time.sleep(0.01)
    harness.office.decide(created.reference, "GRANTED")
    [update] = [u for u in connector.fetch_updates(since) if u.reference == created.reference]
    assert update.status == "GRANTED" and update.crm_status == "closed"
    assert update.key == command.key and update.system == "licensing_uniform"
    assert update.changed_at.tzinfo is not None and update.changed_at.utcoffset() == timedelta(0)
    assert created.reference in (update.note or "") and "granted" in (update.note or "")
    assert command.payload["applicant"]["name"] not in (update.note or "")
    assert created.reference in update.update_id and "GRANTED" in update.update_id


def test_further_information_then_grant_are_two_updates(harness: UniformHarness) -> None:
    connector = harness.connector()
    [created] = connector.submit([harness.command(61)])
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    harness.office.decide(created.reference, "FURTHER_INFO")
    [asked] = [u for u in connector.fetch_updates(since) if u.reference == created.reference]
    assert asked.crm_status == "open"
    time.sleep(0.01)
    harness.office.decide(created.reference, "REFUSED")
    [refused] = [u for u in connector.fetch_updates(asked.changed_at)
                 if u.reference == created.reference]
    assert refused.status == "REFUSED" and refused.update_id != asked.update_id


def test_a_full_page_never_leaves_a_decision_behind_at_its_last_moment(
        harness: UniformHarness) -> None:
    """Staff decide three applications in one batch (one LAST_UPDATED); the page limit is 2."""
    connector = harness.connector(fetch_limit=2)
    created = connector.submit([harness.command(n) for n in (62, 63, 64)])
    refs = {o.reference for o in created}
    batch = datetime(2099, 1, 1) + timedelta(seconds=int(harness.token, 16))   # naive UTC
    try:
        for ref in sorted(refs):
            harness.office.decide(ref, "GRANTED", at=batch)
        page = connector.fetch_updates((batch - timedelta(seconds=1)).replace(tzinfo=timezone.utc))
        cursor = max(u.changed_at for u in page)   # what the hub stores after this page
        rest = connector.fetch_updates(cursor)
        assert {u.reference for u in page + rest} >= refs, "a decision was skipped for good"
    finally:
        for ref in refs:   # back to the present, so other tests' cursors are unaffected
            harness.office.decide(ref, "GRANTED")


def test_concurrent_duplicate_is_caught_by_the_unique_constraint(harness: UniformHarness) -> None:
    """Another worker inserts the same key between our look and our insert."""
    command = harness.command(70)
    [first] = harness.connector().submit([command])

    class Blind(UniformConnector):
        looks = 0

        def _find(self, conn: Any, key: str) -> Any:  # the first look misses the other insert
            self.looks += 1
            return None if self.looks == 1 else super()._find(conn, key)

    blind = Blind(harness.config())
    try:
        [again] = blind.submit([command])
    finally:
        blind.close()
    assert again.status is OutcomeStatus.CONFIRMED and again.reference == first.reference
    assert sum(r["EXT_REF"] == command.key for r in harness.office.applications()) == 1


def test_lock_timeout_is_retried_as_transient_for_real(harness: UniformHarness,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.licensing.uniform")
    connector = harness.connector()
    connector.check()
    before = harness.effects()
    harness.fail_next(1)
    started = time.monotonic()
    [outcome] = connector.submit([harness.command(80)])
    elapsed = time.monotonic() - started
    assert outcome.status is OutcomeStatus.CONFIRMED, outcome
    assert harness.effects() - before == 1
    expected = {"sqlite": "SQLITE_BUSY", "postgresql": "55P03", "mariadb": "1205"}[harness.db.kind]
    retries = [r for r in caplog.records if "transient failure" in r.getMessage()]
    assert len(retries) == 1 and expected in retries[0].getMessage()
    assert elapsed >= harness.config().lock_timeout_seconds * 0.9


def test_lock_held_too_long_leaves_the_command_for_later(harness: UniformHarness) -> None:
    connector = harness.connector(retry_attempts=1)
    before = harness.effects()
    with LicensingBackOffice(harness.db.url).sequence_locked():
        [outcome] = connector.submit([harness.command(81)])
    assert outcome.status is OutcomeStatus.RETRY and outcome.error_class == "TransientError"
    assert harness.effects() == before


def test_check_fails_permanently_when_the_schema_map_names_a_missing_column(
        harness: UniformHarness) -> None:
    connector = harness.connector(schema_map=SchemaMap(columns={"application.ext_ref": "NO_SUCH"}))
    with pytest.raises(PermanentError):
        connector.check()


def test_renamed_vendor_schema_works_through_the_schema_map(harness: UniformHarness) -> None:
    suffix = harness.token
    tables = {"application": "LIC_APPLICATION", "party": "LIC_PARTY", "premises": "LIC_PREMISES",
              "licence_type": "LIC_TYPE_REF", "sequence": "LIC_SEQUENCE"}
    renamed = {logical: f"UNI_{logical.upper()}_{suffix}" for logical in tables}
    rename = {default: renamed[logical] for logical, default in tables.items()}
    rename.update(EXT_REF="CLIENT_REF", LAST_UPDATED="MODIFIED_AT", STATUS="APP_STATUS")
    office = LicensingBackOffice(harness.db.url, rename=rename)
    office.seed_demo()
    schema_map = SchemaMap(
        tables=renamed,
        columns={"application.ext_ref": "CLIENT_REF", "application.last_updated": "MODIFIED_AT",
                 "application.status": "APP_STATUS"})
    connector = harness.connector(schema_map=schema_map)
    try:
        connector.check()
        since = datetime.now(timezone.utc) - timedelta(seconds=1)
        command = harness.command(90)
        [outcome] = connector.submit([command])
        assert outcome.status is OutcomeStatus.CONFIRMED
        assert office.applications()[0]["EXT_REF"] == command.key
        office.decide(outcome.reference, "GRANTED")
        [update] = connector.fetch_updates(since)
        assert update.reference == outcome.reference and update.key == command.key
        assert connector.snapshot([command.key])[command.key]["status"] == "GRANTED"
    finally:
        connector.close()
        office.drop()
        office.close()


def test_snapshot_and_lookups(harness: UniformHarness) -> None:
    connector = harness.connector()
    command = harness.command(95)
    [outcome] = connector.submit([command])
    assert outcome.status is OutcomeStatus.CONFIRMED
    snap = connector.snapshot([command.key, "lic-never-sent"])
    assert set(snap) == {command.key}
    assert snap[command.key]["reference"] == outcome.reference
    assert snap[command.key]["status"] == "RECEIVED"
    assert connector.lookup("premises", {"premises_ref": "PR00004"})["premises_name"]
    assert connector.lookup("premises", {"premises_ref": "PR09999"}) is None
    assert connector.lookup("application", {"key": command.key})["app_ref"] == outcome.reference
    with pytest.raises(NotImplementedError):
        connector.lookup("collection_slots", {})


def _command_from_case(case: dict[str, Any]) -> Command:
    """What the lead's mapping YAML does with a sample case (kept here to prove the data fits)."""
    data = case["data"]
    applicant = dict(data["applicant"])
    payload: dict[str, Any] = {"applicant": applicant,
                               "payment_ref": data.get("payment", {}).get("reference")}
    kind = data["licence_kind"]
    if kind in ("premises", "animal_establishment"):
        payload["premises_ref"] = data["premises"]["reference"]
    if kind == "premises":
        payload["activities"] = data["activities"]
    if kind == "animal_establishment":
        payload["activity"] = data["animal_activity"]
    if kind in ("taxi_driver", "private_hire_driver"):
        payload["driving_licence_number"] = data["driving_licence_number"]
    if kind == "street_trading":
        payload.update(pitch=data["pitch"], commodities=data["commodities"])
    return Command(key=f"{case['id']}-v1", system="licensing_uniform",
                   operation=f"licence.{kind}", payload=payload, case_ref=case["id"])


def test_sample_cases_ten_accepted_two_refused(tmp_sqlite: str) -> None:
    office = LicensingBackOffice(tmp_sqlite)
    office.seed_demo()
    connector = UniformConnector(UniformConfig(url=tmp_sqlite))
    try:
        cases = sample_cases()
        outcomes = connector.submit([_command_from_case(c) for c in cases])
    finally:
        connector.close()
    refused = {c["id"]: o.field for c, o in zip(cases, outcomes)
               if o.status is OutcomeStatus.REJECTED}
    assert refused == REFUSED_CASES
    assert sum(o.status is OutcomeStatus.CONFIRMED for o in outcomes) == 10
    decided = office.decide_pending()
    office.close()
    assert len(decided) == 10


