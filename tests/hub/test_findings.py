"""Connector findings (an entry set aside, a security flag) become one operations work item each."""
from __future__ import annotations

from connectors.base import Finding
from hub.findings import record_finding, reporter
from hub.ledger.models import WorkItem
from tests.connectors.waste.replay import connector, replay, result  # noqa: F401
from tests.hub.factories import rows


def test_a_finding_opens_one_operations_work_item(ledger_url: str) -> None:
    finding = Finding(system="waste_bartec", kind="entry_set_aside", operation="Jobs_Slots_Get",
                      entry="Jobs_Slots_GetResponse/Jobs_Slots_GetResult/Slot[2]",
                      field="Jobs_Slots_GetResponse/Jobs_Slots_GetResult/Slot[2]/SlotDate",
                      reason="field ... is not a date", code="bad-value")
    record_finding(finding, url=ledger_url)
    record_finding(finding, url=ledger_url)   # the same bad entry on the next poll
    [item] = rows(ledger_url, WorkItem)
    assert (item.team, item.system, item.kind) == ("operations", "waste_bartec",
                                                   "answer_entry_set_aside")
    assert "Slot[2]/SlotDate" in item.reason and "Jobs_Slots_Get" in item.reason


def test_a_connector_reports_a_bad_list_entry_and_uses_the_rest(replay, sqlite_ledger: str) -> None:  # noqa: ANN001
    L = "http://www.bartec-systems.com"
    slots = "".join(f'<Slot><SlotDate xmlns="{L}">{d}</SlotDate><Available xmlns="{L}">{a}'
                    f"</Available></Slot>"
                    for d, a in [("2030-01-02", "3"), ("next week", "2"), ("2030-01-04", "1")])
    replay({"ServiceRequests_Types_Get": result(
                "ServiceRequests_Types_Get",
                f'<ServiceType><ID xmlns="{L}">7</ID><Name xmlns="{L}">BULKY COLLECTION</Name>'
                "</ServiceType>"),
            "Jobs_Slots_Get": result("Jobs_Slots_Get", slots, count="int")})
    bartec = connector()
    bartec.report = reporter(sqlite_ledger)
    found = bartec.lookup("waste.collection_slots", {"uprn": "100090000001", "from": "2030-01-01"})
    assert [s["date"] for s in found] == ["2030-01-02", "2030-01-04"]
    [item] = rows(sqlite_ledger, WorkItem)
    assert item.team == "operations" and "Slot[2]/SlotDate" in item.reason
    assert "next week" not in item.reason, "the value itself is never repeated"


def test_a_security_flag_becomes_a_work_item(replay, sqlite_ledger: str) -> None:  # noqa: ANN001
    import pytest

    from connectors.errors import UnsafeAnswer
    from tests.connectors.waste.replay import SOAP
    replay({"Premises_Get": f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]>'
                            f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body><Premises_GetResponse>'
                            "&e;</Premises_GetResponse></soap:Body></soap:Envelope>"})
    bartec = connector()
    bartec.report = reporter(sqlite_ledger)
    with pytest.raises(UnsafeAnswer):
        bartec.lookup("waste.premises", {"uprn": "1"})
    [item] = rows(sqlite_ledger, WorkItem)
    assert (item.team, item.kind) == ("operations", "security_flag")


def test_the_shipped_desk_knows_every_team_and_every_finding_kind() -> None:
    # A kind the desk does not list falls back to "done by hand" with a CRM status: wrong for an
    # operations item with no case behind it; a team it does not list gets no escalation e-mail.
    from connectors.catalog import SYSTEMS
    from hub import desk_config
    from hub.findings import KINDS
    from hub.workitems import OPERATIONS_TEAM

    shipped = desk_config.load(desk_config.SHIPPED)
    assert {e.team for e in SYSTEMS.values()} | {OPERATIONS_TEAM} <= set(shipped.teams)
    for kind in KINDS.values():
        assert kind in shipped.kinds, kind
        assert all(r.crm_status is None for r in shipped.kinds[kind].resolutions), kind
