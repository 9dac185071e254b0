"""Property: the Northgate connector reads every answer its WSDL allows (optional elements
dropped, order varied, unknown elements and attributes, elements qualified or not), sets aside a
change whose needed value is missing or malformed (naming the field), and confirms a create only
with a real reference."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Command, OutcomeStatus
from connectors.revenues.northgate import NorthgateConfig, NorthgateConnector

ENDPOINT = "http://revenues.property.test/soap"
NS = "http://revenues.example.gov.uk/northgate/v1"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
MARKUP = object()
PROFILE = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BASE = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)

styles = st.sampled_from(["qualified", "inherit", "prefixed"])
noise = st.lists(st.sampled_from(['<Surprise a="1">?</Surprise>', '<x:Ext xmlns:x="urn:x"/>']),
                 max_size=2)


def el(name: str, value: object, style: str) -> str:
    if value is None:
        return ""
    inner = "<b>x</b>" if value is MARKUP else escape(str(value))
    if style == "prefixed":
        return f'<n:{name} xmlns:n="{NS}">{inner}</n:{name}>'
    ns = f' xmlns="{NS}"' if style == "qualified" else ""
    return f"<{name}{ns}>{inner}</{name}>"


def envelope(body: str) -> bytes:
    return f'<soap:Envelope xmlns:soap="{ENV}"><soap:Body>{body}</soap:Body></soap:Envelope>'.encode()


@contextmanager
def answering(answers: dict[str, str]) -> Iterator[list[str]]:
    asked: list[str] = []

    def reply(request: object) -> tuple[int, dict[str, str], bytes]:
        body = request.body  # type: ignore[attr-defined]
        text = body.decode() if isinstance(body, bytes) else body
        operation = next(op for op in answers if f":{op}>" in text or f"<{op}" in text)
        asked.append(operation)
        return 200, {"Content-Type": "text/xml"}, envelope(answers[operation])

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, ENDPOINT, callback=reply)
        yield asked


def connector() -> NorthgateConnector:
    return NorthgateConnector(NorthgateConfig(endpoint=ENDPOINT, username="u", password="p",
                                              timeout_seconds=2, retry_attempts=1,
                                              retry_max_wait_seconds=0.01))


@st.composite
def changes(draw: st.DrawFn) -> tuple[list[dict[str, object]], str]:
    items = []
    parts = []
    for n in range(draw(st.integers(0, 6))):
        item: dict[str, object] = {
            "ChangeId": f"CH{n}", "Reference": draw(st.from_regex(r"RQ[0-9]{4,8}", fullmatch=True)),
            "ClientReference": draw(st.sampled_from([f"key{n}", f"key{n}/out", f"key{n}/bill"])),
            "RequestType": draw(st.sampled_from(["MoveOut", None])),
            "Status": draw(st.sampled_from(["COMPLETED", "held", "IN PROGRESS"])),
            "Note": draw(st.sampled_from([None, "", "Rebilled"])),
            "ChangedAt": (BASE + timedelta(minutes=draw(st.integers(-30, 30)))).isoformat()}
        if draw(st.integers(0, 3)) == 0:   # a needed value missing or malformed
            field = draw(st.sampled_from(["ChangeId", "Reference", "Status", "ChangedAt"]))
            item[field] = draw(st.sampled_from([None, "", MARKUP] + (
                ["None", "<x>"] if field == "Reference" else ["soon"] if field == "ChangedAt"
                else ["<x>", "done!"] if field == "Status" else [])))
            item["_bad"] = field
        items.append(item)
        style = draw(styles)
        inner = [el(k, v, style) for k, v in item.items() if not k.startswith("_")]
        inner += draw(noise)
        parts.append(f'<Change xmlns="{NS}" extra="1">{"".join(draw(st.permutations(inner)))}'
                     "</Change>")
    return items, f'<ChangesGetResponse xmlns="{NS}">{"".join(parts)}</ChangesGetResponse>'


@PROFILE
@given(changes())
def test_changes_read_what_the_wsdl_allows_and_set_aside_the_rest(case) -> None:  # noqa: ANN001
    items, xml = case
    with answering({"ChangesGet": xml}):
        northgate = connector()
        findings: list = []
        northgate.report = findings.append
        updates = northgate.fetch_updates(BASE - timedelta(hours=1))
    good = [i for i in items if "_bad" not in i]
    assert sorted((u.update_id, u.reference, u.status, u.key, u.note) for u in updates) == sorted(
        (i["ChangeId"], i["Reference"], str(i["Status"]).upper(),
         str(i["ClientReference"]).split("/")[0], i["Note"] or None) for i in good)
    assert sorted(f.field.rsplit("/", 1)[-1] for f in findings) == sorted(
        str(i["_bad"]) for i in items if "_bad" in i)


@st.composite
def create_answers(draw: st.DrawFn) -> tuple[object, str]:
    reference = draw(st.one_of(st.from_regex(r"RQ[0-9]{4,8}", fullmatch=True),
                               st.sampled_from(["", "None", MARKUP, None, " RQ1234 "])))
    style = draw(styles)
    inner = [el("Reference", reference, style), el("ClientReference", "k-create", style),
             el("RequestType", "DiscountApply", style), el("AccountRef", "CT00000001", style),
             el("Status", draw(st.sampled_from(["APPLIED", "applied"])), style),
             el("Reason", draw(st.sampled_from([None, ""])), style),
             el("CreatedAt", draw(st.sampled_from(["2026-03-01T09:00:00Z", "", "later"])), style),
             *draw(noise)]
    body = "".join(draw(st.permutations(inner)))
    return reference, (f'<DiscountApplyResponse xmlns="{NS}"><Request>{body}</Request>'
                       "</DiscountApplyResponse>")


@PROFILE
@given(create_answers())
def test_a_create_is_confirmed_only_with_a_real_reference(answer) -> None:  # noqa: ANN001
    reference, xml = answer
    command = Command(key="k-create", system="revenues_northgate",
                      operation="ctax.single_person_discount", case_ref="CRM-1",
                      payload={"account_ref": "CT00000001", "effective_from": "2026-03-01",
                               "adults_resident": 1})
    with answering({"DiscountApply": xml, "RequestFind": f'<RequestFindResponse xmlns="{NS}"/>'}):
        [outcome] = connector().submit([command])
    if isinstance(reference, str) and reference.strip().startswith("RQ"):
        assert (outcome.status, outcome.reference) == (OutcomeStatus.CONFIRMED, reference.strip())
    else:
        assert outcome.status is OutcomeStatus.RETRY and outcome.error_class == "UnknownOutcomeError"


@st.composite
def listed_requests(draw: st.DrawFn) -> tuple[list[dict[str, object]], str]:
    """A RequestList page as the WSDL allows it: optional UpdatedAt and Details (and each detail)
    dropped, order varied, unknown elements, Move In / Rebill steps listed beside their Move Out."""
    items, parts = [], []
    for n in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["MOVE_OUT", "DISCOUNT", "DIRECT_DEBIT", "RELIEF", "OTHER"]))
        step = draw(st.sampled_from(["", "/out", "/in", "/bill"])) if kind == "MOVE_OUT" else ""
        details = {"MovedOn": draw(st.sampled_from([None, "2026-06-01"])),
                   "EffectiveFrom": draw(st.sampled_from([None, "2026-04-01"])),
                   "AdultsResident": draw(st.sampled_from([None, "1"])),
                   "PaymentDay": draw(st.sampled_from([None, "15"])),
                   "ReliefType": draw(st.sampled_from([None, "SBRR"]))}
        item: dict[str, object] = {
            "Reference": f"RQ{n:08d}", "ClientReference": f"key{n}{step}", "RequestType": kind,
            "AccountRef": "CT00000001", "Status": draw(st.sampled_from(["COMPLETED", "held"])),
            "CreatedAt": (BASE + timedelta(minutes=n)).isoformat(),
            "UpdatedAt": draw(st.sampled_from([None, (BASE + timedelta(hours=1)).isoformat()]))}
        if draw(st.integers(0, 4)) == 0:
            field = draw(st.sampled_from(["Reference", "Status", "ClientReference"]))
            item[field] = draw(st.sampled_from([None, "", MARKUP]))
            item["_bad"] = field
        item["_step"] = step in ("/in", "/bill")
        item["_details"] = details
        items.append(item)
        style = draw(styles)
        inner = [el(k, v, style) for k, v in item.items() if not k.startswith("_")]
        if draw(st.booleans()):
            inner.append(f'<Details xmlns="{NS}">' + "".join(
                el(k, v, "inherit") for k, v in details.items()) + "</Details>")
        else:
            item["_details"] = {}
        inner += draw(noise)
        parts.append(f'<Request xmlns="{NS}">{"".join(draw(st.permutations(inner)))}</Request>')
    return items, (f'<RequestListResponse xmlns="{NS}">{"".join(parts)}'
                   "<MoreAvailable>false</MoreAvailable></RequestListResponse>")


@PROFILE
@given(listed_requests())
def test_records_read_what_the_wsdl_allows_and_set_aside_the_rest(case) -> None:  # noqa: ANN001
    items, xml = case
    with answering({"RequestList": xml}):
        northgate = connector()
        findings: list = []
        northgate.report = findings.append
        records = list(northgate.records())
    good = [i for i in items if "_bad" not in i and not i["_step"]]
    assert [(r.reference, r.key, r.status) for r in records] == [
        (i["Reference"], str(i["ClientReference"]).split("/")[0], str(i["Status"]).upper())
        for i in good], "main requests only, steps folded into their Move Out"
    assert sorted(f.field.rsplit("/", 1)[-1] for f in findings) == sorted(
        str(i["_bad"]) for i in items if "_bad" in i)
    for record, item in zip(records, good):
        assert record.fields["account_ref"] == "CT00000001"
        details = item["_details"]
        if item["RequestType"] == "DIRECT_DEBIT" and details.get("PaymentDay"):  # type: ignore[union-attr]
            assert record.fields["payment_day"] == 15
        if item["RequestType"] == "MOVE_OUT":
            assert record.operation == "ctax.change_of_address"
            assert record.fields.get("moved_on") == details.get("MovedOn")  # type: ignore[union-attr]
        assert set(record.fields) <= {"account_ref", "moved_on", "effective_from",
                                      "adults_resident", "payment_day", "relief_type"}
        assert record.changed_at is not None and record.changed_at.tzinfo is not None
