"""BartecConnector.records(): ServiceRequests_Get by DateRequested windows against the simulator
(drift made through its admin endpoints shows), and, with hypothesis, every listed request the
vendor's schema allows read or set aside naming the field."""
from __future__ import annotations

from datetime import datetime, timezone

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import OutcomeStatus
from simulators.waste import sample
from tests.connectors.waste.conftest import WasteHarness, WasteSim
from tests.connectors.waste.replay import L, connector, replaying, result

PROFILE = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MARKUP = object()


def _mine(sim: WasteSim, keys: set[str], **kwargs: object) -> dict[str, list]:
    from connectors.waste.bartec import BartecConnector
    found: dict[str, list] = {}
    for record in BartecConnector(sim.config()).records(**kwargs):
        if record.key in keys:
            found.setdefault(record.key, []).append(record)
    return found


def test_drift_made_in_the_simulator_shows_in_records(waste_sim: WasteSim) -> None:
    harness = WasteHarness(waste_sim)
    commands = [harness.command(1), harness.command(2)]
    outcomes = harness.connector().submit(commands)
    assert all(o.status is OutcomeStatus.CONFIRMED for o in outcomes), outcomes
    drift = f"{waste_sim.url}/admin/drift/records"
    other_uprn = next(p["uprn"] for p in sample.premises()
                      if p["uprn"] != commands[0].payload["uprn"])
    assert httpx.post(f"{drift}/{outcomes[0].reference}", timeout=5,
                      json={"status": "CANCELLED", "fields": {"UPRN": other_uprn}}).status_code == 200
    assert httpx.delete(f"{drift}/{outcomes[1].reference}", timeout=5).status_code == 200
    stranger = f"{harness.prefix}-stranger"
    added = httpx.post(drift, timeout=5, json={"key": stranger, "like": outcomes[0].reference})
    assert added.status_code == 200, added.text
    found = _mine(waste_sim, {commands[0].key, commands[1].key, stranger}, page_size=2)
    [record] = found[commands[0].key]
    assert (record.status, record.fields["uprn"]) == ("CANCELLED", other_uprn)
    assert commands[1].key not in found
    assert [r.reference for r in found[stranger]] == [added.json()["reference"]]
    assert httpx.post(f"{drift}/{outcomes[0].reference}", timeout=5,
                      json={"fields": {"UPRN": "999999999999"}}).status_code == 422
    assert httpx.delete(f"{drift}/SR99999999", timeout=5).status_code == 404


@st.composite
def listings(draw: st.DrawFn) -> tuple[list[dict[str, object]], str]:
    entries, parts = [], []
    for n in range(draw(st.integers(0, 6))):
        entry: dict[str, object] = {
            "ServiceCode": f"SR{n:08d}", "Status": draw(st.sampled_from(["OPEN", "closed"])),
            "ExternalReference": draw(st.sampled_from([f"key-{n}", "", None])),
            "UPRN": draw(st.sampled_from(["100000001", None])),
            "TypeName": draw(st.sampled_from(["BULKY COLLECTION", "MISSED FOOD", "DOG BIN", None])),
            "DateAdded": "2026-03-01T10:00:00.123",
            "DateModified": draw(st.sampled_from([None, "2026-03-02T11:00:00"]))}
        if draw(st.integers(0, 4)) == 0:
            entry["_bad"] = draw(st.sampled_from(["ServiceCode", "ServiceStatus", "Status"]))
        entries.append(entry)
        inner = [] if entry.get("_bad") == "ServiceCode" else \
            [f'<ServiceCode xmlns="{L}">{entry["ServiceCode"]}</ServiceCode>']
        if entry.get("_bad") != "ServiceStatus":
            status = "<b>x</b>" if entry.get("_bad") == "Status" else entry["Status"]
            inner.append(f'<ServiceStatus xmlns="{L}"><ID>1</ID><Status>{status}</Status>'
                         "</ServiceStatus>")
        if entry["ExternalReference"] is not None:
            inner.append(f'<ExternalReference xmlns="{L}">{entry["ExternalReference"]}'
                         "</ExternalReference>")
        if entry["UPRN"] is not None:
            inner.append(f'<Premises xmlns="{L}"><UPRN>{entry["UPRN"]}</UPRN></Premises>')
        if entry["TypeName"] is not None:
            inner.append(f'<ServiceType xmlns="{L}"><ID>9</ID><Name>{entry["TypeName"]}</Name>'
                         "</ServiceType>")
        modified = (f"<ModifiedBy>x</ModifiedBy><DateModified>{entry['DateModified']}</DateModified>"
                    if entry["DateModified"] else "")
        inner.append(f'<RecordStamp xmlns="{L}"><AddedBy>a</AddedBy>'
                     f"<DateAdded>{entry['DateAdded']}</DateAdded>{modified}</RecordStamp>")
        inner.append('<Unknown a="1">x</Unknown>')
        parts.append(f"<ServiceRequest>{''.join(draw(st.permutations(inner)))}</ServiceRequest>")
    return entries, "".join(parts)


@PROFILE
@given(listings())
def test_every_listed_request_is_read_or_set_aside(case) -> None:  # noqa: ANN001
    entries, xml = case
    answered: list[int] = []

    def once(params: dict) -> str:
        answered.append(1)
        return result("ServiceRequests_Get", xml if len(answered) == 1 else "",
                      count=str(len(entries)))

    with replaying({"ServiceRequests_Get": once}):
        bartec = connector(records_horizon_days=2)
        findings: list = []
        bartec.report = findings.append
        records = list(bartec.records())
    good = [e for e in entries if "_bad" not in e]
    assert [(r.reference, r.key, r.status) for r in records] == [
        (e["ServiceCode"], e["ExternalReference"] or None, str(e["Status"]).upper()) for e in good]
    assert sorted(f.field.rsplit("/", 1)[-1] for f in findings) == sorted(
        str(e["_bad"]) for e in entries if "_bad" in e)
    for record, entry in zip(records, good):
        assert record.fields.get("uprn") == entry["UPRN"]
        expected = {"BULKY COLLECTION": "waste.bulky_collection",
                    "MISSED FOOD": "waste.missed_bin"}.get(str(entry["TypeName"]))
        assert record.operation == expected
        if expected == "waste.missed_bin":
            assert record.fields["bin_type"] == "food"
        local = datetime.fromisoformat(str(entry["DateModified"] or entry["DateAdded"]))
        assert record.changed_at == local.replace(tzinfo=_london()).astimezone(timezone.utc)


def _london():  # noqa: ANN202
    from zoneinfo import ZoneInfo
    return ZoneInfo("Europe/London")


def test_a_crowded_window_is_asked_again_in_halves() -> None:
    many = "".join(f'<ServiceRequest><ServiceCode xmlns="{L}">SR{n:08d}</ServiceCode>'
                   f'<ServiceStatus xmlns="{L}"><Status>OPEN</Status></ServiceStatus>'
                   "</ServiceRequest>" for n in range(3))
    two = "</ServiceRequest>".join(many.split("</ServiceRequest>")[:2]) + "</ServiceRequest>"
    answers = iter([many, two] + [""] * 10_000)
    with replaying({"ServiceRequests_Get": lambda p: result("ServiceRequests_Get", next(answers))}) \
            as player:
        records = list(connector(records_horizon_days=1).records(page_size=2))
    asked = player.asked("ServiceRequests_Get")
    assert [r.reference for r in records] == ["SR00000000", "SR00000001"], \
        "the crowded answer is dropped and its window asked again in halves"
    assert len(asked) >= 3
