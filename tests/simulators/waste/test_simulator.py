"""The waste simulator: SOAP shapes (conformance with recorded Bartec bodies), rules, admin API."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zeep
from lxml import etree

from simulators.serving import serve_in_thread
from simulators.waste import sample
from simulators.waste.app import create_app
from simulators.waste.responses import B, L, result_ns

REFERENCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "reference" / "bartec"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
USER, PASSWORD = "hub", "pw"


class Sim:
    def __init__(self, url: str) -> None:
        self.url = url
        self.bookings = 0
        self.token = self.call("Authenticate", user=USER, password=PASSWORD).findtext(
            f".//{{{L}}}TokenString")

    def call(self, operation: str, **params: str) -> etree._Element:
        """POST a SOAP envelope; the Body's response element."""
        if operation != "Authenticate" and "token" not in params:
            params = {"token": self.token, **params}
        fields = "".join(f"<b:{k}>{v}</b:{k}>" for k, v in params.items())
        body = (f'<s:Envelope xmlns:s="{SOAP}" xmlns:b="{B}"><s:Body><b:{operation}>{fields}'
                f"</b:{operation}></s:Body></s:Envelope>")
        response = httpx.post(f"{self.url}/soap", content=body, timeout=5,
                              headers={"Content-Type": "text/xml; charset=utf-8"})
        assert response.status_code == 200, response.text
        return etree.fromstring(response.content).find(f"{{{SOAP}}}Body")[0]

    def create_bulky(self, reference: str, uprn: str = sample.uprn(3)) -> etree._Element:
        self.bookings += 1  # spread bookings over the slots: each takes three
        slots = [d for d, cap in sample.bulky_slots(_today()) if cap]
        slot = slots[self.bookings % len(slots)]
        extended = (f"<b:ExtendedDataField><FieldName xmlns='{L}'>SLOT_DATE</FieldName>"
                    f"<FieldValue xmlns='{L}'>{slot}</FieldValue></b:ExtendedDataField>"
                    f"<b:ExtendedDataField><FieldName xmlns='{L}'>ITEM</FieldName>"
                    f"<FieldValue xmlns='{L}'>Sofa x1</FieldValue></b:ExtendedDataField>")
        return self.call("ServiceRequest_Create", ServiceTypeID=str(sample.BULKY_TYPE_ID),
                         UPRN=uprn, ExternalReference=reference, ExtendedData=extended)


def _today():  # noqa: ANN202
    from simulators.waste.store import local_now
    return local_now().date()


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    app = create_app(tmp_path_factory.mktemp("wsim") / "w.db", username=USER, password=PASSWORD,
                     seed_demo=True)
    with serve_in_thread(app) as url:
        yield Sim(url)


def _errors(element: etree._Element) -> tuple[int, str]:
    return (int(element.findtext(f".//{{{L}}}Result")),
            element.findtext(f".//{{{L}}}Message") or "")


def _paths(element: etree._Element, prefix: str = "") -> set[str]:
    path = f"{prefix}/{element.tag}"
    found = {path} | {f"{path}/@{a}" for a in element.attrib if not a.startswith("{")}
    for node in element:
        if isinstance(node.tag, str):
            found |= _paths(node, path)
    return found


def _reference(name: str) -> etree._Element:
    text = (REFERENCE / name).read_text(encoding="utf-8")
    # the recorded bodies are fragments cut from envelopes: declare the xsi prefix they use
    text = re.sub(r"^(\s*<\w+)", r'\1 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
                  text, count=1)
    return etree.fromstring(text.encode())



@pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference/bartec is not present")
@pytest.mark.parametrize(("recorded", "operation", "params"), [
    ("get_premises.xml", "Premises_Get", {"PostCode": sample.premises()[0]["postcode"]}),
    ("servicerequests_types_get.xml", "ServiceRequests_Types_Get", {}),
    ("servicerequest_create.xml", "ServiceRequest_Create", None),
    ("servicerequests_get_SR1.xml", "ServiceRequests_Get", None),
    ("servicerequests_updates_get_20200619.xml", "ServiceRequests_Updates_Get",
     {"LastUpdated": "2000-01-01T00:00:00"}),
])
def test_responses_have_the_recorded_element_structure(sim: Sim, recorded: str, operation: str,
                                                       params: dict[str, str] | None) -> None:
    if operation == "ServiceRequest_Create":
        answer = sim.create_bulky("conformance-create")
    elif operation == "ServiceRequests_Get":
        sim.create_bulky("conformance-get")
        answer = sim.call(operation, ExternalReference="conformance-get")
    else:
        answer = sim.call(operation, **(params or {}))
    assert _errors(answer) == (0, "")
    ours, theirs = _paths(answer), _paths(_reference(recorded))
    # Our results always end with an Errors block, even where the recording leaves it out.
    extra = {p for p in ours - theirs if "}Errors" in p}
    assert theirs - ours == set(), f"elements the simulator never sends: {sorted(theirs - ours)}"
    assert ours - theirs - extra == set(), f"elements not in the recording: {sorted(ours - theirs)}"


def test_wsdl_is_served_self_contained_and_loads_in_zeep(sim: Sim, tmp_path: Path) -> None:
    response = httpx.get(f"{sim.url}/soap?wsdl", timeout=5)
    assert response.status_code == 200 and b"schemaLocation" not in response.content
    path = tmp_path / "served.wsdl"
    path.write_bytes(response.content)
    client = zeep.Client(str(path), settings=zeep.Settings(strict=True, forbid_dtd=True,
                                                           forbid_entities=True))
    assert client.service._binding_options["address"] == f"{sim.url}/soap"


def test_bad_credentials_and_bad_tokens_are_reported_in_errors(sim: Sim) -> None:
    assert _errors(sim.call("Authenticate", user=USER, password="nope"))[0] != 0
    assert _errors(sim.call("Premises_Get", token="stale", UPRN=sample.uprn(1))) == (2, "Invalid Token")


def test_duplicate_external_reference_returns_the_existing_request(sim: Sim) -> None:
    first = sim.create_bulky("dup-1")
    again = sim.create_bulky("dup-1")
    code = first.findtext(f".//{{{result_ns('ServiceRequests_Types_Get')}}}ServiceCode")
    assert _errors(again)[0] == 6
    assert again.findtext(f".//{{{result_ns('ServiceRequests_Types_Get')}}}ServiceCode") == code


def test_staff_change_is_visible_through_updates_and_stats(sim: Sim) -> None:
    created = sim.create_bulky("staff-1")
    code = created.findtext(f".//{{{result_ns('ServiceRequests_Types_Get')}}}ServiceCode")
    before = sim.call("ServiceRequests_Get", ServiceCode=code)
    request = before.find(f".//{{{result_ns('ServiceRequests_Get')}}}ServiceRequest")
    since = request.findtext(f"{{{L}}}RecordStamp/{{{L}}}DateAdded")
    effects = httpx.get(f"{sim.url}/admin/stats", timeout=5).json()["effects"]
    response = httpx.post(f"{sim.url}/admin/requests/{code}/status", timeout=5,
                          json={"status": "COMPLETED", "note": "Collected"})
    assert response.json() == {"service_code": code, "status": "COMPLETED"}
    updates = sim.call("ServiceRequests_Updates_Get", LastUpdated=since)
    ns = result_ns("ServiceRequests_Updates_Get")
    assert [u.findtext(f"{{{ns}}}ServiceCode") for u in updates.iter(f"{{{ns}}}ServiceRequest_Updates")] == [code]
    after = sim.call("ServiceRequests_Get", ServiceCode=code)
    assert after.findtext(f".//{{{L}}}ServiceStatus/{{{L}}}Status") == "COMPLETED"
    assert after.findtext(f".//{{{L}}}ModifiedBy") == "crew.app"
    assert httpx.get(f"{sim.url}/admin/stats", timeout=5).json()["effects"] == effects
    missing = httpx.post(f"{sim.url}/admin/requests/SR99999999/status", timeout=5,
                         json={"status": "COMPLETED"})
    assert missing.status_code == 404


def test_sample_data_is_consistent() -> None:
    cases = sample.sample_cases(_today())
    assert len(cases) == 12
    assert {c["case_type"] for c in cases} == {"waste_bulky_collection", "waste_missed_bin"}
    uprns = {p["uprn"] for p in sample.premises()}
    assert all(c["data"]["uprn"] in uprns for c in cases)


def test_a_refused_bulky_request_does_not_use_up_its_slot(tmp_path: Path) -> None:
    from simulators.waste.store import BartecError, NewRequest, WasteStore
    store = WasteStore(tmp_path / "slots.db")
    try:
        store.seed_demo(_today())
        slot = next(d for d, cap in sample.bulky_slots(_today()) if cap)

        def booked() -> int:
            [row] = [r for r in store.slots(sample.BULKY_TYPE_ID, sample.uprn(1), slot, slot)]
            return int(row["booked"])

        no_items = NewRequest(service_type_id=sample.BULKY_TYPE_ID, uprn=sample.uprn(1),
                              external_reference="no-items", extended=[("SLOT_DATE", slot.isoformat())],
                              contact={}, username=USER)
        with pytest.raises(BartecError):
            store.create_request(no_items)
        assert booked() == 0, "the refused request left the slot booked"
        store.create_request(NewRequest(**{**no_items.__dict__, "external_reference": "with-items",
                                           "extended": [("SLOT_DATE", slot.isoformat()),
                                                        ("ITEM", "Sofa x1")]}))
        assert booked() == 1
    finally:
        store.close()
