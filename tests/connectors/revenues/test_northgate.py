"""NorthgateConnector behaviour against the Revenues simulator over real SOAP."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import pytest

from connectors.base import OutcomeStatus
from connectors.errors import PermanentError, Rejected
from connectors.revenues.northgate import NorthgateConfig, NorthgateConnector, command_key
from tests.connectors.revenues.harness import (RevenuesSim, command, direct_debit, move,
                                               new_key)


def test_move_out_in_and_rebill_are_three_effects(revenues_sim: RevenuesSim) -> None:
    connector = revenues_sim.connector()
    before = revenues_sim.stats()
    [outcome] = connector.submit([move("CT00000010", new_property_ref="P000151")])
    after = revenues_sim.stats()

    assert outcome.status is OutcomeStatus.CONFIRMED, outcome
    assert outcome.reference == outcome.details["move_out_reference"]
    assert {"move_in_reference", "rebill_reference", "balance_pence"} <= set(outcome.details)
    assert after["effects"] - before["effects"] == 3
    for kind in ("MOVE_OUT", "MOVE_IN", "REBILL"):
        assert after["requests"].get(kind, 0) - before["requests"].get(kind, 0) == 1
    account = revenues_sim.account("CT00000010")
    assert account["property_ref"] == "P000151" and account["status"] == "LIVE"
    assert account["balance_pence"] == outcome.details["balance_pence"]


def test_leaving_the_area_moves_out_and_raises_a_final_bill(revenues_sim: RevenuesSim) -> None:
    before = revenues_sim.effects()
    [outcome] = revenues_sim.connector().submit([move("CT00000011", new_property_ref=None)])
    assert outcome.status is OutcomeStatus.CONFIRMED, outcome
    assert "move_in_reference" not in outcome.details
    assert revenues_sim.effects() - before == 2
    assert revenues_sim.account("CT00000011")["status"] == "MOVED_OUT"


def test_resending_a_move_applies_nothing_new(revenues_sim: RevenuesSim) -> None:
    connector = revenues_sim.connector()
    cmd = move("CT00000012")
    [first] = connector.submit([cmd])
    before = revenues_sim.effects()
    [again] = connector.submit([cmd])
    [unsure] = connector.submit([move("CT00000012", key=cmd.key, maybe_sent=True)])
    assert first.reference == again.reference == unsure.reference
    assert first.details == again.details == unsure.details
    assert revenues_sim.effects() == before


def test_a_move_in_refused_after_the_move_out_says_the_move_is_half_done(
        revenues_sim: RevenuesSim) -> None:
    before = revenues_sim.effects()
    [outcome] = revenues_sim.connector().submit([move("CT00000013", new_property_ref="P999999")])
    assert outcome.status is OutcomeStatus.REJECTED, outcome
    assert outcome.message.startswith("half done: Move Out RQ") and "MoveIn" in outcome.message
    assert revenues_sim.effects() - before == 1, "only the Move Out was applied"


def test_a_plain_send_does_not_look_first(revenues_sim: RevenuesSim) -> None:
    before = revenues_sim.stats()["calls"].get("RequestFind", 0)
    revenues_sim.connector().submit([direct_debit("CT00000028", 28)[0]])
    assert revenues_sim.stats()["calls"].get("RequestFind", 0) == before


def test_held_move_is_rejected_as_held_and_stops_before_move_in(revenues_sim: RevenuesSim) -> None:
    before = revenues_sim.stats()
    [outcome] = revenues_sim.connector().submit([move("CT00000007")])
    after = revenues_sim.stats()
    assert outcome.status is OutcomeStatus.REJECTED
    assert outcome.held and outcome.code == "HELD"
    assert "review" in (outcome.message or "")
    assert after["held"] - before["held"] == 1
    assert after["requests"].get("MOVE_IN", 0) == before["requests"].get("MOVE_IN", 0)


def test_unknown_account_is_rejected_with_the_fault_code(revenues_sim: RevenuesSim) -> None:
    before = revenues_sim.effects()
    [outcome] = revenues_sim.connector().submit([move("CT99999902")])
    assert outcome.status is OutcomeStatus.REJECTED and not outcome.held
    assert outcome.code == "UnknownAccount" and outcome.error_class == "Rejected"
    assert revenues_sim.effects() == before


def test_invalid_payload_is_rejected_naming_the_field(revenues_sim: RevenuesSim) -> None:
    bad = command("ctax.change_of_address", {"account_ref": "CT1", "moved_on": "2026-06-01",
                                             "new_property_ref": "P000150"})
    [outcome] = revenues_sim.connector().submit([bad])
    assert outcome.status is OutcomeStatus.REJECTED and outcome.field == "account_ref"


def test_direct_debit_sets_up_a_mandate(revenues_sim: RevenuesSim) -> None:
    cmd, _ = direct_debit("CT00000013", 13)
    [outcome] = revenues_sim.connector().submit([cmd])
    assert outcome.status is OutcomeStatus.CONFIRMED and outcome.reference
    assert revenues_sim.account("CT00000013")["direct_debit_day"] == 15


@pytest.mark.parametrize(("account", "adults", "confirmed"), [
    ("CT00000014", 1, True),     # one adult on the account
    ("CT00000015", 1, False),    # the account records two adults (15 % 3 == 0)
    ("CT00000016", 2, False),    # the customer says two adults live there
])
def test_single_person_discount(revenues_sim: RevenuesSim, account: str, adults: int,
                                confirmed: bool) -> None:
    cmd = command("ctax.single_person_discount",
                  {"account_ref": account, "effective_from": "2026-05-01", "adults_resident": adults})
    [outcome] = revenues_sim.connector().submit([cmd])
    if confirmed:
        assert outcome.status is OutcomeStatus.CONFIRMED
        assert revenues_sim.account(account)["single_person_discount"] == 1
    else:
        assert outcome.status is OutcomeStatus.REJECTED and outcome.code == "NotEligible"
        assert revenues_sim.account(account)["single_person_discount"] == 0


def test_relief_application(revenues_sim: RevenuesSim) -> None:
    def relief(account: str, kind: str):  # noqa: ANN202
        return command("nndr.relief_application",
                       {"account_ref": account, "relief_type": kind, "effective_from": "2026-04-01"})
    ok, too_valuable, charity = revenues_sim.connector().submit(
        [relief("NR00000002", "SBRR"), relief("NR00000005", "SBRR"),
         relief("NR00000005", "CHARITABLE")])
    assert ok.status is OutcomeStatus.CONFIRMED
    assert too_valuable.status is OutcomeStatus.REJECTED and too_valuable.code == "NotEligible"
    assert "rateable value" in (too_valuable.message or "")
    assert charity.status is OutcomeStatus.CONFIRMED
    assert revenues_sim.account("NR00000005")["relief"] == "CHARITABLE"


def test_lookup_account(revenues_sim: RevenuesSim) -> None:
    connector = revenues_sim.connector()
    account = connector.lookup("ctax.account", {"account_ref": "CT00000020"})
    assert account is not None
    assert account["band"] == "E" and account["status"] == "LIVE"  # "ABCDEFGH"[20 % 8]
    assert isinstance(account["balance_pence"], int)
    assert connector.lookup("ctax.account", {"account_ref": "CT99999901"}) is None
    assert connector.lookup("nndr.account", {"account_ref": "NR00000005"})["rateable_value"] == 90_000
    with pytest.raises(Rejected) as info:
        connector.lookup("ctax.account", {"account_ref": "nonsense"})
    assert info.value.field == "account_ref"


def test_timeout_after_sending_gives_exactly_one_effect(revenues_sim: RevenuesSim) -> None:
    connector = revenues_sim.connector(timeout=0.5)
    cmd = move("CT00000017")
    before = revenues_sim.stats()
    revenues_sim.arm(1, "timeout", delay_seconds=1.5)  # MoveOut is applied, the answer is late
    [outcome] = connector.submit([cmd])
    after = revenues_sim.stats()
    assert outcome.status is OutcomeStatus.CONFIRMED, outcome
    assert after["effects"] - before["effects"] == 3, "move out, move in, rebill: once each"
    assert after["requests"]["MOVE_OUT"] - before["requests"].get("MOVE_OUT", 0) == 1
    finds = after["calls"].get("RequestFind", 0) - before["calls"].get("RequestFind", 0)
    assert finds == 1, "after an unknown outcome the connector looks before creating again"
    moves_out = after["calls"]["MoveOut"] - before["calls"].get("MoveOut", 0)
    assert moves_out == 1, "the move out found by RequestFind is not sent again"


def test_timeout_on_every_try_leaves_a_retry_outcome_then_a_resend_finds_it(
        revenues_sim: RevenuesSim) -> None:
    connector = revenues_sim.connector(timeout=0.5, attempts=1)
    cmd, _ = direct_debit("CT00000018", 18)
    before = revenues_sim.effects()
    revenues_sim.arm(1, "timeout", delay_seconds=1.5)
    [first] = connector.submit([cmd])
    assert first.status is OutcomeStatus.RETRY and first.error_class == "UnknownOutcomeError"
    assert revenues_sim.effects() - before == 1, "the back office did apply it"
    [again] = revenues_sim.connector().submit([cmd.__class__(**{**cmd.__dict__, "maybe_sent": True})])
    assert again.status is OutcomeStatus.CONFIRMED
    assert revenues_sim.effects() - before == 1


def test_http_503_is_retried(revenues_sim: RevenuesSim) -> None:
    cmd, _ = direct_debit("CT00000019", 19)
    revenues_sim.arm(2, "http_503")
    [outcome] = revenues_sim.connector().submit([cmd])
    assert outcome.status is OutcomeStatus.CONFIRMED


def test_bad_credentials_stop_the_batch(revenues_sim: RevenuesSim) -> None:
    commands = [direct_debit("CT00000022", 22)[0], direct_debit("CT00000023", 23)[0]]
    before = revenues_sim.effects()
    outcomes = revenues_sim.connector(password="wrong").submit(commands)
    assert [o.status for o in outcomes] == [OutcomeStatus.RETRY, OutcomeStatus.RETRY]
    assert {o.error_class for o in outcomes} == {"PermanentError"}
    assert revenues_sim.effects() == before


def test_staff_change_shows_in_updates_with_key_and_crm_status(revenues_sim: RevenuesSim) -> None:
    connector = revenues_sim.connector()
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    cmd = move("CT00000021")  # a held move: staff release it and close it
    [held] = connector.submit([cmd])
    assert held.held
    reference = held.message.split("request ")[1].split(")")[0]
    assert all(u.reference != reference for u in connector.fetch_updates(since)), \
        "the hub's own creates are not changes"
    revenues_sim.set_status(reference, "COMPLETED", "move confirmed by the revenues team")
    [update] = [u for u in connector.fetch_updates(since) if u.reference == reference]
    assert update.key == cmd.key and update.status == "COMPLETED" and update.crm_status == "closed"
    assert update.system == "revenues_northgate" and update.changed_at.tzinfo is not None
    assert update.note == "move confirmed by the revenues team"


def test_snapshot_reports_reference_and_status(revenues_sim: RevenuesSim) -> None:
    connector = revenues_sim.connector()
    moved, dd = move("CT00000024"), direct_debit("CT00000025", 25)[0]
    outcomes = connector.submit([moved, dd])
    unknown = new_key("never-sent")
    snap = connector.snapshot([moved.key, dd.key, unknown])
    assert snap[moved.key] == {"reference": outcomes[0].reference, "status": "COMPLETED"}
    assert snap[dd.key]["reference"] == outcomes[1].reference
    assert unknown not in snap


def test_no_personal_data_in_logs_for_moves(revenues_sim: RevenuesSim,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connector = revenues_sim.connector()
    connector.submit([move("CT00000026", new_property_ref=None), move("CT99999901",
                                                                      new_property_ref=None)])
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for value in ("Quillfeather", "ZE2 9QQ", "Elsewhere"):
        assert value not in text


def test_config_from_connection_allowlists_fields() -> None:
    config = NorthgateConfig.from_connection(host="https://rev.example/soap", login="u",
                                             password="p", extra={"timeout_seconds": 5})
    assert config.endpoint == "https://rev.example/soap" and config.timeout_seconds == 5
    assert "p" not in repr(config.password)
    with pytest.raises(PermanentError) as info:
        NorthgateConfig.from_connection(host="rev.example", login="u", password="p")
    assert "endpoint" in info.value.message
    assert NorthgateConnector.system_id() == "revenues_northgate"


def test_command_key_strips_only_move_steps() -> None:
    assert command_key("abc/out") == "abc" and command_key("abc/bill") == "abc"
    assert command_key("a/b") == "a/b" and command_key("plain") == "plain"


def test_dates_travel_as_dates(revenues_sim: RevenuesSim) -> None:
    cmd = move("CT00000027", moved_on=date(2026, 10, 1))
    [outcome] = revenues_sim.connector().submit([cmd])
    assert outcome.status is OutcomeStatus.CONFIRMED
    assert revenues_sim.account("CT00000027")["liable_from"] == "2026-10-01"
