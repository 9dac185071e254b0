"""Property: the Bartec connector reads every answer the vendor's schema allows, and sets aside
(with a finding naming the field) every entry whose needed value is missing or malformed.

Generated answers vary what real ones vary: optional elements dropped, placeholder or odd
``RecordCount`` values, element order, leaf elements in the leaf namespace, in the result's
namespace (as ``ServiceRequests_Updates_Get`` sends them) or in none, unknown extra elements and
attributes, ``xsi:nil`` optional parts. Nothing may raise unclassified, nothing may be confirmed
with a reference that is not one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Command, OutcomeStatus
from connectors.fields import is_status_word
from tests.connectors.waste.replay import L, connector, replaying

LONDON = ZoneInfo("Europe/London")
HUB_USER = "hub-api"
SINCE = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
MARKUP = object()   # a value that arrives as markup: <b>...</b>
PROFILE = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

styles = st.sampled_from(["leaf", "result", "none"])
record_counts = st.one_of(st.integers(0, 999).map(str), st.sampled_from(["int", "", "-1", "1e3"]),
                          st.none())
noise = st.lists(st.sampled_from(['<Unknown1 a="?">x</Unknown1>', "<Extra/>",
                                  f'<Future xmlns="{L}"><Deep><Er>1</Er></Deep></Future>']),
                 max_size=2)


def leaf(name: str, value: object, style: str) -> str:
    ns = {"leaf": f' xmlns="{L}"', "result": "", "none": ' xmlns=""'}[style]
    if value is None:
        return ""
    if value == "nil":
        return f'<{name}{ns} xsi:nil="true"/>'
    inner = "<b>x</b>" if value is MARKUP else escape(str(value))
    return f"<{name}{ns}>{inner}</{name}>"


def shuffled(draw: st.DrawFn, parts: list[str]) -> str:
    return "".join(draw(st.permutations(parts)))


def result_xml(operation: str, entries: str, count: str | None, errors: bool) -> str:
    attribute = f' RecordCount="{count}"' if count is not None else ""
    block = (f'<Errors><Result xmlns="{L}">0</Result><Message xmlns="{L}"/></Errors>'
             if errors else "")
    return (f'<{operation}Response xmlns="http://bartec-systems.com/"><{operation}Result '
            f'xmlns="http://www.bartec-systems.com/{operation}.xsd"{attribute} Extra="yes">'
            f"{entries}{block}</{operation}Result></{operation}Response>")


# -- updates: ServiceRequests_Updates_Get + ServiceRequests_History_Get --------------------------
codes = st.from_regex(r"SR[0-9]{3,10}", fullmatch=True)
bad_codes = st.sampled_from(["", "None", MARKUP, None])


@dataclass
class HistoryEntry:
    status: object
    when: object   # a datetime (London), or a bad value
    by: str | None
    closing: str | None
    comments: str | None

    def bad_field(self) -> str | None:
        """The field the connector must name when it sets this entry aside (None: readable)."""
        if self.status is None:
            return "ServiceStatus"
        if not is_status_word(self.status):
            return "Status"
        if not isinstance(self.when, datetime):
            return "DateAdded"
        return None


@st.composite
def history_entries(draw: st.DrawFn) -> HistoryEntry:
    broken = draw(st.booleans()) and draw(st.booleans())   # about one in four
    status = draw(st.sampled_from(["OPEN", "IN PROGRESS", "completed", "CLOSED"]))
    when = datetime(2024, 6, 1, 13, 0) + timedelta(minutes=draw(st.integers(-600, 600)),
                                                   milliseconds=draw(st.integers(0, 999)))
    if broken:
        which = draw(st.sampled_from(["status", "when"]))
        if which == "status":
            status = draw(st.sampled_from(["", MARKUP, None, "<i>x</i>", "DONE!"]))
        else:
            when = draw(st.sampled_from(["", "yesterday", MARKUP, None]))
    return HistoryEntry(status, when, draw(st.sampled_from([HUB_USER, "crew.app", None])),
                        draw(st.sampled_from([None, "nil", "NO ACCESS", ""])),
                        draw(st.sampled_from([None, "", "Gate locked"])))


@st.composite
def history_xml(draw: st.DrawFn, code: str, entries: list[HistoryEntry]) -> str:
    parts = []
    for number, e in enumerate(entries, start=1):
        style = draw(styles)
        when = e.when.isoformat(timespec="milliseconds") if isinstance(e.when, datetime) else e.when
        stamp = "".join([leaf("AddedBy", e.by, "result" if style != "none" else "none"),
                         leaf("DateAdded", when, style if style != "result" else "leaf"),
                         leaf("Comments", e.comments, style)])
        status = leaf("Status", e.status, style)
        inner = [leaf("ID", number if draw(st.booleans()) else None, style),
                 leaf("ServiceCode", code, style),
                 (f'<ServiceStatus xmlns="{L}">{status}<SequenceNumber>{number}</SequenceNumber>'
                  "</ServiceStatus>") if e.status is not None else "",
                 leaf("ClosingCode", e.closing, style),
                 f'<RecordStamp xmlns="{L}">{stamp}</RecordStamp>', *draw(noise)]
        parts.append(f"<ServiceRequest_History>{shuffled(draw, inner)}</ServiceRequest_History>")
    return result_xml("ServiceRequests_History_Get", "".join(parts), draw(record_counts),
                      draw(st.booleans()))


@st.composite
def update_rounds(draw: st.DrawFn) -> tuple[list[object], dict[str, list[HistoryEntry]], str, dict]:
    good = draw(st.lists(codes, min_size=1, max_size=4, unique=True))
    listed: list[object] = list(good)
    for _ in range(draw(st.integers(0, 2))):
        listed.insert(draw(st.integers(0, len(listed))), draw(bad_codes))
    histories = {c: draw(st.lists(history_entries(), min_size=0, max_size=4)) for c in good}
    entries = []
    for code in listed:
        style = draw(styles)
        inner = [leaf("ServiceRequestID", draw(st.integers(1, 99999)), style),
                 leaf("ServiceCode", code, style),
                 leaf("JobReference", draw(st.sampled_from([None, "", "J1"])), style),
                 leaf("ServiceType", draw(st.sampled_from([None, "BULKY"])), style),
                 leaf("DateAdded", draw(st.sampled_from([None, "0001-01-01T00:00:00", ""])), style),
                 leaf("DateChanged", draw(st.sampled_from(["2024-06-01T13:00:00.007", "",
                                                           "not a date"])), style),
                 *draw(noise)]
        attr = draw(st.sampled_from(['', ' RecordCount="0"', ' RecordCount="int"']))
        entries.append(f"<ServiceRequest_Updates{attr}>{shuffled(draw, inner)}"
                       "</ServiceRequest_Updates>")
    updates = result_xml("ServiceRequests_Updates_Get", "".join(entries), draw(record_counts),
                         draw(st.booleans()))
    history = {c: draw(history_xml(c, histories[c])) for c in good}
    return listed, histories, updates, history


@PROFILE
@given(update_rounds())
def test_updates_read_what_the_schema_allows_and_set_aside_the_rest(case) -> None:  # noqa: ANN001
    listed, histories, updates_xml, history = case
    with replaying({"ServiceRequests_Updates_Get": updates_xml,
                    "ServiceRequests_History_Get": lambda p: history[p["ServiceCode"]],
                    "ServiceRequests_Get": result("ServiceRequests_Get", "")}) as player:
        bartec = connector(username=HUB_USER)
        findings: list = []
        bartec.report = findings.append
        updates = bartec.fetch_updates(SINCE)
    good_codes = [c for c in listed if isinstance(c, str) and c.startswith("SR")]
    assert [p["ServiceCode"] for p in player.asked("ServiceRequests_History_Get")] == good_codes
    expected = set()
    bad_fields = []
    for code in good_codes:
        for entry in histories[code]:
            if entry.bad_field() is not None:
                bad_fields.append(entry.bad_field())
                continue
            changed = entry.when.replace(tzinfo=LONDON).astimezone(timezone.utc)  # type: ignore[union-attr]
            if changed > SINCE and (entry.by or "") != HUB_USER:
                expected.add((code, entry.status.upper(), changed))  # type: ignore[union-attr]
    assert {(u.reference, u.status, u.changed_at) for u in updates} == expected
    for update in updates:
        assert update.crm_status == ("closed" if update.status in ("COMPLETED", "CLOSED")
                                     else "open")
        assert update.key is None, "an empty ServiceRequests_Get answer gives no key"
    bad_codes_listed = len(listed) - len(good_codes)
    code_findings = [f for f in findings if f.field and f.field.endswith("/ServiceCode")]
    assert len(code_findings) == bad_codes_listed
    history_findings = sorted(f.field.rsplit("/", 1)[-1] for f in findings
                              if f.operation == "ServiceRequests_History_Get")
    assert history_findings == sorted(bad_fields)
    assert all(f.kind == "entry_set_aside" and f.system == "waste_bartec" for f in findings)


def result(operation: str, inner: str) -> str:
    return result_xml(operation, inner, "1", True)


# -- create: never confirmed with a reference that is not one ----------------------------------
TYPES = result("ServiceRequests_Types_Get",
               f'<ServiceType><ID xmlns="{L}">101</ID><Name xmlns="{L}">BULKY COLLECTION</Name>'
               "</ServiceType>")


@st.composite
def create_answers(draw: st.DrawFn) -> tuple[object, str]:
    code = draw(st.one_of(codes, st.sampled_from(["", "None", "null", MARKUP, None, "x" * 200,
                                                  "<script>", " SR1 "])))
    style = draw(styles)
    inner = [leaf("ServiceRequest_Create", "" if draw(st.booleans()) else None, "result"),
             leaf("ServiceCode", code, style), *draw(noise)]
    # the vendor answers the create in another operation's namespace, as recorded
    xml = (f'<ServiceRequest_CreateResponse xmlns="http://bartec-systems.com/">'
           f'<ServiceRequest_CreateResult xmlns="http://www.bartec-systems.com/'
           f'ServiceRequests_Types_Get.xsd" RecordCount="{draw(st.sampled_from(["int", "1", ""]))}">'
           f"{shuffled(draw, inner)}"
           + (f'<Errors><Result xmlns="{L}">0</Result></Errors>' if draw(st.booleans()) else "")
           + "</ServiceRequest_CreateResult></ServiceRequest_CreateResponse>")
    return code, xml


@PROFILE
@given(create_answers())
def test_a_create_is_confirmed_only_with_a_real_reference(answer) -> None:  # noqa: ANN001
    code, xml = answer
    command = Command(key="prop-key-1", system="waste_bartec", operation="waste.bulky_collection",
                      payload={"uprn": "100090000001", "slot_date": "2030-01-07",
                               "items": [{"name": "Sofa", "quantity": 1}]}, case_ref="CRM-P1")
    with replaying({"ServiceRequests_Types_Get": TYPES, "ServiceRequest_Create": xml,
                    "ServiceRequests_Get": result("ServiceRequests_Get", "")}):
        [outcome] = connector().submit([command])
    readable = isinstance(code, str) and code.strip().startswith("SR") and len(code) <= 120 \
        and code.strip() == code.strip().split("<")[0]
    if readable:
        assert (outcome.status, outcome.reference) == (OutcomeStatus.CONFIRMED, code.strip())  # type: ignore[union-attr]
    else:
        assert outcome.status is OutcomeStatus.RETRY, outcome
        assert outcome.error_class == "UnknownOutcomeError" and outcome.reference is None


# -- slots and premises: one bad entry set aside, the rest read --------------------------------
@st.composite
def slot_lists(draw: st.DrawFn) -> tuple[list[tuple[object, object]], str]:
    slots = draw(st.lists(st.tuples(
        st.one_of(st.dates().map(lambda d: d.isoformat()),
                  st.sampled_from(["", "next week", MARKUP, None, "2030-02-30"])),
        st.one_of(st.integers(-1, 9), st.sampled_from(["", "many", None]))), max_size=6))
    parts = []
    for day, available in slots:
        style = draw(styles)
        inner = [leaf("SlotDate", day, style), leaf("Available", available, style),
                 leaf("Round", draw(st.sampled_from([None, "BULKY MON", "nil"])), style),
                 leaf("Capacity", draw(st.sampled_from([None, "3", "lots"])), style),
                 *draw(noise)]
        parts.append(f"<Slot>{shuffled(draw, inner)}</Slot>")
    return slots, result_xml("Jobs_Slots_Get", "".join(parts), draw(record_counts),
                             draw(st.booleans()))


def _date_ok(value: object) -> bool:
    from datetime import date
    try:
        date.fromisoformat(str(value)[:10])
    except ValueError:
        return False
    return isinstance(value, str) and len(value) >= 10


@PROFILE
@given(slot_lists())
def test_slots_keep_every_readable_entry(case) -> None:  # noqa: ANN001
    slots, xml = case
    with replaying({"ServiceRequests_Types_Get": TYPES, "Jobs_Slots_Get": xml}):
        bartec = connector()
        findings: list = []
        bartec.report = findings.append
        found = bartec.lookup("waste.collection_slots", {"uprn": "100090000001",
                                                         "from": "2030-01-01"})
    readable = [(d, a) for d, a in slots if _date_ok(d) and isinstance(a, int)]
    assert [(s["date"], s["available"]) for s in found] == [
        (str(d)[:10], a) for d, a in readable if a > 0]  # type: ignore[operator]
    assert len(findings) == len(slots) - len(readable)
