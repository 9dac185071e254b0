"""The Benefits back office on disk: picks up complete files only, validates, de-duplicates, answers."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from connectors.benefits import fileformat as ff
from simulators.benefits.backoffice import BenefitsBackOffice
from simulators.benefits.sample import EMPLOYED_CLAIM, UNKNOWN_CLAIM, claims

NOW = datetime(2026, 2, 1, tzinfo=timezone.utc)


@pytest.fixture
def backoffice(tmp_path: Path) -> BenefitsBackOffice:
    office = BenefitsBackOffice(tmp_path / "root", tmp_path / "bo.db")
    office.setup()
    office.seed(claims())
    return office


def change(key: str, claim: str = "HB0000001", kind: str = "hb.income_change",
           when: date = date(2026, 2, 2), **fields: object) -> ff.ChangeRecord:
    return ff.ChangeRecord(key, "CRM-1", kind, claim, when, fields or {"amount": "10.00"})


def drop(office: BenefitsBackOffice, name: str, records: list[ff.ChangeRecord]) -> None:
    (office.inbound / name).write_bytes(ff.build_change_file(name[:-4], NOW, records))


def answers(office: BenefitsBackOffice) -> list[ff.Response]:
    out = []
    for path in sorted(office.outbound.iterdir()):
        out += ff.parse_response_file(path.read_bytes()).responses
    return out


def test_temporary_names_are_ignored_until_renamed(backoffice: BenefitsBackOffice) -> None:
    data = ff.build_change_file("COC_1", NOW, [change("k1")])
    temp = backoffice.inbound / ff.temporary_name("COC_1.csv")
    temp.write_bytes(data)
    assert backoffice.process().files == 0 and backoffice.effects() == 0
    temp.rename(backoffice.inbound / "COC_1.csv")
    assert backoffice.process().files == 1 and backoffice.effects() == 1
    assert list(backoffice.inbound.iterdir()) == [], "processed files leave inbound"


def test_each_record_is_answered_accepted_or_rejected_with_a_reason(
        backoffice: BenefitsBackOffice) -> None:
    drop(backoffice, "COC_1.csv", [
        change("ok"), change("unknown", claim=UNKNOWN_CLAIM),
        change("early", claim=EMPLOYED_CLAIM, kind="hb.stopped_work", when=date(2026, 1, 15),
               employer="X"),
        change("closed", claim="HB0000030")])
    backoffice.process()
    got = {a.record_id: (a.result, a.claim_ref, a.reason_code) for a in answers(backoffice)}
    assert got == {"ok": ("ACCEPTED", "HB0000001", ""),
                   "unknown": ("REJECTED", UNKNOWN_CLAIM, "UNKNOWN_CLAIM"),
                   "early": ("REJECTED", EMPLOYED_CLAIM, "END_BEFORE_START"),
                   "closed": ("REJECTED", "HB0000030", "CLAIM_CLOSED")}
    assert backoffice.effects() == 1


def test_overlapping_files_apply_each_record_once(backoffice: BenefitsBackOffice) -> None:
    drop(backoffice, "COC_1.csv", [change("a"), change("b", claim="HB0000002")])
    drop(backoffice, "COC_2.csv", [change("b", claim="HB0000002"), change("c", claim="HB0000003")])
    report = backoffice.process()
    assert (report.records, report.duplicates) == (4, 1)
    assert backoffice.effects() == 3
    assert sorted(a.record_id for a in answers(backoffice)) == ["a", "b", "c"]


def test_same_record_id_with_other_content_is_refused(backoffice: BenefitsBackOffice) -> None:
    drop(backoffice, "COC_1.csv", [change("a")])
    backoffice.process()
    drop(backoffice, "COC_2.csv", [change("a", amount="99.00")])
    backoffice.process()
    assert [a.reason_code for a in answers(backoffice)] == ["", "DUPLICATE_RECORD_ID"]
    assert backoffice.effects() == 1


def test_corrupt_file_is_refused_as_a_whole(backoffice: BenefitsBackOffice) -> None:
    data = ff.build_change_file("COC_1", NOW, [change("a")]).replace(b"10.00", b"99.00")
    (backoffice.inbound / "COC_1.csv").write_bytes(data)
    backoffice.process()
    assert backoffice.effects() == 0
    [out] = list(backoffice.outbound.iterdir())
    [rejection] = ff.parse_response_file(out.read_bytes()).file_rejections
    assert (rejection.file_name, rejection.reason_code) == ("COC_1.csv", "INVALID_FILE")


def test_answers_wait_for_the_delay(tmp_path: Path) -> None:
    clock = [NOW]
    office = BenefitsBackOffice(tmp_path / "root", tmp_path / "bo.db", response_delay_seconds=60,
                                clock=lambda: clock[0])
    office.setup()
    office.seed(claims())
    drop(office, "COC_1.csv", [change("a")])
    assert office.process().answers_written == 0 and office.effects() == 1
    clock[0] = NOW.replace(minute=1)
    assert office.process().answers_written == 1
    assert [a.answered_at for a in answers(office)] == [clock[0]], "stamped when written"


def test_staff_change_appears_as_a_status_file(backoffice: BenefitsBackOffice) -> None:
    event = backoffice.staff_change("HB0000004", "RECALCULATED", "benefit recalculated")
    backoffice.process()
    [out] = list(backoffice.outbound.iterdir())
    [status] = ff.parse_response_file(out.read_bytes()).status_changes
    assert (status.event_id, status.claim_ref, status.status) == (event, "HB0000004", "RECALCULATED")
    assert backoffice.process().answers_written == 0, "written once"


def test_state_survives_a_restart(backoffice: BenefitsBackOffice) -> None:
    drop(backoffice, "COC_1.csv", [change("a")])
    backoffice.process()
    again = BenefitsBackOffice(backoffice.root, backoffice.db_path)
    again.setup()
    drop(again, "COC_2.csv", [change("a")])
    again.process()
    assert again.effects() == 1
    assert again.claim("HB0000001")["last_change"]["record_id"] == "a"


def test_the_back_office_hashes_records_as_the_connector_does(backoffice: BenefitsBackOffice) -> None:
    # The simulator reads the format on its own; the content hash it answers with must be the
    # connector's, also for text that is not ASCII and for nested fields.
    record = change("unicode", note="Zoë’s flat — 2nd floor", nested={"b": [1, 2], "a": None})
    drop(backoffice, "COC_1.csv", [record])
    backoffice.process()
    [answer] = answers(backoffice)
    assert answer.record_hash == record.content_hash and answer.result == "ACCEPTED"


@pytest.mark.parametrize("damage", ["count", "checksum", "header", "columns"])
def test_a_damaged_file_is_refused_whole_with_an_F_line(backoffice: BenefitsBackOffice,
                                                        damage: str) -> None:
    data = ff.build_change_file("COC_1", NOW, [change("k1"), change("k2")])
    lines = data.split(b"\r\n")
    if damage == "count":
        data = data.replace(b"\r\nT,2,", b"\r\nT,3,")
    elif damage == "checksum":
        data = data.replace(b"k2", b"k3")
    elif damage == "header":
        data = data.replace(b"ACADEMY-COC", b"ACADEMY-XXX")
    else:
        body = b"\r\n".join(lines[:2] + [b"D,k2,CRM-1"]) + b"\r\n"
        data = body + f"T,2,{ff.sha256_hex(body)}\r\n".encode()
    (backoffice.inbound / "COC_1.csv").write_bytes(data)
    backoffice.process()
    assert backoffice.effects() == 0
    [path] = list(backoffice.outbound.iterdir())
    parsed = ff.parse_response_file(path.read_bytes())
    assert [(r.file_name, r.reason_code) for r in parsed.file_rejections] == [
        ("COC_1.csv", "INVALID_FILE")]
