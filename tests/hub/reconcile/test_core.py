"""The pure comparison core: each finding class from small keyed streams, and nothing else."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connectors.base import BackOfficeRecord
from hub.reconcile import core
from hub.reconcile.findings import FindingClass as F

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
POLICY = core.Policy(now=NOW)


def cmd(key: str, state: str = "confirmed", **kw) -> core.LedgerCommand:  # noqa: ANN003
    n = int(key[1:])
    values = {"crm_id": f"C{n}", "command_id": n, "case_id": n, "operation": "op",
              "reference": f"R{n}", "payload": {"postcode": "EX1 1AA", "uprn": 10}} | kw
    return core.LedgerCommand(key=key, state=state, **values)


def rec(key: str | None, ref: str = "R", **kw) -> BackOfficeRecord:  # noqa: ANN003
    values = {"status": "OPEN", "fields": {"postcode": "EX1 1AA", "uprn": "10"}} | kw
    return BackOfficeRecord(reference=ref, key=key, **values)


def codes(findings) -> list[tuple[str, str, tuple[str, ...]]]:  # noqa: ANN001
    return [(f.code.value, f.key, f.fields) for f in findings]


def test_agreeing_sides_give_no_finding_and_are_counted() -> None:
    tally = core.Tally()
    out = list(core.compare_backoffice("s", [cmd("K1"), cmd("K2")],
                                       [rec("K1", "R1"), rec("K2", "R2"), rec(None)], POLICY,
                                       tally=tally))
    assert out == []
    assert (tally.ledger, tally.backoffice, tally.backoffice_without_key) == (2, 2, 1)


def test_missing_unknown_and_field_mismatch_per_field() -> None:
    ledger = [cmd("K1"), cmd("K2"), cmd("K4")]
    records = [rec("K0"), rec("K1", fields={"postcode": "ex1  1aa", "uprn": 10}),
               rec("K2", fields={"postcode": "ZZ9 9ZZ", "uprn": 11, "extra": 1}), rec("K3"),
               rec("K9")]
    found = codes(core.compare_backoffice("s", ledger, records, POLICY))
    assert found == [("unknown_in_backoffice", "K0", ()),
                     ("field_mismatch", "K2", ("postcode",)), ("field_mismatch", "K2", ("uprn",)),
                     ("unknown_in_backoffice", "K3", ()), ("missing_in_backoffice", "K4", ()),
                     ("unknown_in_backoffice", "K9", ())]


def test_findings_name_fields_never_values() -> None:
    finding = next(core.compare_backoffice(
        "s", [cmd("K1", payload={"name": "Jo Bloggs"})],
        [rec("K1", fields={"name": "Joanne Bloggs"})], POLICY))
    assert finding.fields == ("name",)
    assert "Jo" not in repr(finding) and "Bloggs" not in repr(finding)


def test_stuck_sending_past_lease_and_awaiting_past_due_only() -> None:
    ledger = [cmd("K1", "sending", claimed_at=NOW - timedelta(minutes=20)),
              cmd("K2", "sending", claimed_at=NOW - timedelta(minutes=5)),
              cmd("K3", "awaiting", due_by=NOW - timedelta(minutes=1)),
              cmd("K4", "awaiting", due_by=NOW + timedelta(hours=1)),
              cmd("K5", "pending"), cmd("K6", "rejected")]
    found = list(core.compare_backoffice("s", ledger, [rec("K1", "R1")], POLICY))
    assert [(f.code, f.key, f.detail, f.reference) for f in found] == [
        (F.STUCK, "K1", "sending_past_lease", "R1"), (F.STUCK, "K3", "awaiting_past_due", None)]


def test_unlisted_operations_are_not_missing() -> None:
    found = list(core.compare_backoffice("s", [cmd("K1", operation="direct_debit")], [], POLICY,
                                         listed=lambda c: c.operation != "direct_debit"))
    assert found == []


def test_unsorted_ledger_is_refused() -> None:
    with pytest.raises(ValueError, match="ascending key"):
        list(core.compare_backoffice("s", [cmd("K2"), cmd("K1")], [], POLICY))


def msg(crm: str, oid: int, status: str = "completed", ref: str | None = "R1",
        delivered: bool = True, system: str = "s", command_id: int = 1,
        created_at: datetime | None = NOW - timedelta(days=2)) -> core.LedgerMessage:
    return core.LedgerMessage(crm, oid, 1, command_id, system, status, ref, delivered, created_at)


def seen(crm: str, status: str, changed_at: datetime | None, command_id: int = 1) -> core.StatusSeen:
    return core.StatusSeen(crm, "K1", command_id, 1, "R1", status, changed_at)


def test_writeback_missing_when_crm_lacks_the_delivered_status_or_reference() -> None:
    messages = [msg("C1", 1), msg("C2", 2), msg("C3", 3), msg("C4", 4, ref="R4"),
                msg("C5", 5, delivered=False), msg("C6", 6, system="other")]
    crm = [core.CrmView("C1", "completed", "R1"), core.CrmView("C2", "in_progress", "R1"),
           core.CrmView("C4", "completed", None), core.CrmView("C5", "in_progress"),
           core.CrmView("C6", "in_progress")]
    found = list(core.compare_crm("s", messages, crm, []))
    assert [(f.code, f.key, f.fields, f.outbox_id) for f in found] == [
        (F.WRITEBACK_MISSING, "C2", ("status",), 2), (F.WRITEBACK_MISSING, "C3", ("case",), 3),
        (F.WRITEBACK_MISSING, "C4", ("backoffice_reference",), 4)]


def test_status_not_in_crm_only_for_a_status_newer_than_the_last_write_back() -> None:
    written = NOW - timedelta(days=2)
    messages = [msg("C1", 1), msg("C2", 2), msg("C3", 3), msg("C4", 4)]
    crm = [core.CrmView(c, "completed", "R1") for c in ("C1", "C2", "C3", "C4")]
    statuses = [seen("C1", "in_progress", written + timedelta(hours=1)),   # later, not in CRM
                seen("C2", "in_progress", written - timedelta(hours=1)),   # before the write-back
                seen("C3", "completed", written + timedelta(hours=1)),     # CRM shows it
                seen("C4", "in_progress", None)]                            # cannot tell
    found = list(core.compare_crm("s", messages, crm, statuses))
    assert [(f.code, f.key, f.crm_id) for f in found] == [(F.STATUS_NOT_IN_CRM, "K1", "C1")]


def test_unmapped_cases_past_the_grace_period() -> None:
    cases = [core.LedgerCase(1, "C1", "received", NOW - timedelta(hours=2)),
             core.LedgerCase(2, "C2", "received", NOW - timedelta(minutes=5)),
             core.LedgerCase(3, "C3", "mapped", NOW - timedelta(days=2))]
    assert [f.key for f in core.unmapped_cases("s", cases, POLICY)] == ["C1"]


def test_same_drift_same_identity_new_drift_new_identity() -> None:
    def one(value: str):  # noqa: ANN202
        return next(core.compare_backoffice("s", [cmd("K1")], [rec("K1", fields={"postcode": value})],
                                            POLICY))
    assert one("A").identity() == one("A").identity() != one("B").identity()
