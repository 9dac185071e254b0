"""Intake: cases become commands once; bad input is kept, written back and handed to a team."""
from __future__ import annotations


from hub import intake
from hub.ledger.models import Case, Command, OutboxMessage, WorkItem
from tests.hub.factories import coa_data, receive, rows



def test_a_valid_case_becomes_one_pending_command(ledger_url: str) -> None:
    receive(ledger_url, "CRM-10", coa_data())
    stats = intake.map_received(url=ledger_url)
    assert (stats.mapped, stats.commands, stats.invalid) == (1, 1, 0)
    [command] = rows(ledger_url, Command)
    assert command.system == "revenues_northgate" and command.operation == "ctax.change_of_address"
    assert command.state == "pending" and command.key.startswith("CRM-10.")
    assert command.payload["account_ref"] == "CT00000001"
    [case] = rows(ledger_url, Case)
    assert case.state == "mapped" and case.systems == "revenues_northgate"
    assert intake.map_received(url=ledger_url).mapped == 0, "a mapped case is not mapped again"


def test_bad_input_is_kept_with_a_work_item_and_a_crm_note(ledger_url: str) -> None:
    receive(ledger_url, "CRM-11", coa_data(account="not an account"))
    stats = intake.map_received(url=ledger_url)
    assert stats.invalid == 1 and stats.commands == 0
    [case] = rows(ledger_url, Case)
    assert case.state == "invalid" and "account_reference" in case.error
    assert case.payload is not None, "the input is kept for a person to act on"
    [item] = rows(ledger_url, WorkItem)
    assert item.team == "revenues" and item.kind == "invalid_case" and "CRM-11" in item.reason
    [note] = rows(ledger_url, OutboxMessage)
    assert note.status == "needs_review" and "account_reference" in note.note


def test_an_unknown_case_type_goes_to_operations(ledger_url: str) -> None:
    receive(ledger_url, "CRM-12", {"anything": 1}, case_type="pothole_report")
    intake.map_received(url=ledger_url)
    [item] = rows(ledger_url, WorkItem)
    assert item.team == "operations" and "case_type" in item.reason


def test_a_new_version_sends_only_what_changed(ledger_url: str) -> None:
    receive(ledger_url, "CRM-13", coa_data())
    intake.map_received(url=ledger_url)
    phone_changed = coa_data()
    phone_changed["customer"]["phone"] = "01632 999999"
    receive(ledger_url, "CRM-13", phone_changed, version=2)
    intake.map_received(url=ledger_url)
    assert len(rows(ledger_url, Command)) == 1, "an unmapped change asks the back office nothing new"
    receive(ledger_url, "CRM-13", coa_data(moving_date="2026-04-01"), version=3)
    intake.map_received(url=ledger_url)
    commands = rows(ledger_url, Command)
    assert len(commands) == 2 and commands[0].key != commands[1].key


def test_a_correction_back_to_an_earlier_value_is_sent_again(ledger_url: str) -> None:
    receive(ledger_url, "CRM-14", coa_data(moving_date="2026-03-01"))
    receive(ledger_url, "CRM-14", coa_data(moving_date="2026-04-01"), version=2)
    receive(ledger_url, "CRM-14", coa_data(moving_date="2026-03-01"), version=3)
    intake.map_received(url=ledger_url)
    keys = [c.key for c in rows(ledger_url, Command)]
    assert len(keys) == 3 and len(set(keys)) == 3
    assert keys[2].startswith(keys[0][:40]) and keys[2].endswith(".v3") and len(keys[2]) <= 64
    assert [c.payload["moved_on"] for c in rows(ledger_url, Command)] == [
        "2026-03-01", "2026-04-01", "2026-03-01"]
    receive(ledger_url, "CRM-14", coa_data(moving_date="2026-03-01"), version=4)
    intake.map_received(url=ledger_url)
    assert len(rows(ledger_url, Command)) == 3, "a repeat of the latest request sends nothing"


def test_a_case_the_ledger_refuses_is_kept_not_retried_for_ever(sqlite_ledger: str,
                                                                monkeypatch) -> None:  # noqa: ANN001
    from datetime import datetime, timezone

    from crm_adapter.models import CaseRefused, CrmCase
    from hub import intake
    from hub.ledger.models import InboundRejection, WorkItem
    from tests.hub.factories import rows

    case = CrmCase(crm_id="CRM-R1", version=1, case_type="ctax_single_person_discount",
                   updated_at=datetime(2026, 3, 1, tzinfo=timezone.utc), data={"a": 1})

    def refuse(*args: object, **kwargs: object) -> bool:
        raise CaseRefused("DataError")

    monkeypatch.setattr(intake, "record_case", refuse)
    assert intake._record_pulled(case, sqlite_ledger) is False
    [kept] = rows(sqlite_ledger, InboundRejection)
    assert kept.delivery_id == "pull:CRM-R1:v1" and "DataError" in kept.error
    assert [w.kind for w in rows(sqlite_ledger, WorkItem)] == ["unreadable_input"]
