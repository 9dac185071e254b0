"""Response elements in Bartec Collective's shapes (see ../shared/reference/bartec/).

The wrapper is in ``http://bartec-systems.com/``, the result in
``http://www.bartec-systems.com/<Operation>.xsd`` with a ``RecordCount`` attribute, and the leaf
elements in ``http://www.bartec-systems.com``; each result ends with an ``Errors`` block.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from lxml import etree

from simulators.waste import sample
from simulators.waste.store import STATUSES, stamp

B = "http://bartec-systems.com/"
L = "http://www.bartec-systems.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def result_ns(operation: str) -> str:
    return f"http://www.bartec-systems.com/{operation}.xsd"


def _sub(parent: etree._Element, ns: str, name: str, text: Any = None,
         attrib: Mapping[str, str] | None = None) -> etree._Element:
    nsmap = {None: ns} if parent.nsmap.get(None) != ns else None
    node = etree.SubElement(parent, f"{{{ns}}}{name}", attrib=dict(attrib or {}), nsmap=nsmap)
    if text is not None:
        node.text = str(text).lower() if isinstance(text, bool) else str(text)
    return node


def _nil(parent: etree._Element, name: str) -> None:
    node = _sub(parent, L, name)
    node.set(f"{{{XSI}}}nil", "true")


def wrap(operation: str, result_op: str | None = None,
         record_count: int | None = None) -> tuple[etree._Element, etree._Element]:
    """(response element, result element) for ``operation``."""
    response = etree.Element(f"{{{B}}}{operation}Response", nsmap={None: B, "xsi": XSI})
    result = _sub(response, result_ns(result_op or operation), f"{operation}Result")
    if record_count is not None:
        result.set("RecordCount", str(record_count))
    return response, result


def errors(result: etree._Element, code: int = 0, message: str | None = None) -> None:
    block = _sub(result, result.nsmap[None], "Errors")
    _sub(block, L, "Result", code)
    _sub(block, L, "Message", message or None)


def error_response(operation: str, code: int, message: str, result_op: str | None = None,
                   service_code: str | None = None) -> etree._Element:
    response, result = wrap(operation, result_op, 0)
    if service_code and operation == "ServiceRequest_Create":
        _sub(result, result.nsmap[None], "ServiceRequest_Create")
        _sub(result, result.nsmap[None], "ServiceCode", service_code)
    errors(result, code, message)
    return response


def _record_stamp(parent: etree._Element, added_by: str, added: str, *,
                  modified_by: str | None = None, modified: str | None = None,
                  comments: str | None = None) -> None:
    node = _sub(parent, L, "RecordStamp")
    _sub(node, L, "AddedBy", added_by)
    _sub(node, L, "DateAdded", added)
    if modified_by:
        _sub(node, L, "ModifiedBy", modified_by)
        _sub(node, L, "DateModified", modified)
    if comments is not None:
        _sub(node, L, "Comments", comments)


def _location(parent: etree._Element, name: str, p: Mapping[str, Any]) -> None:
    node = _sub(parent, L, name)
    _sub(node, L, "BNG", attrib={"Easting": str(p["easting"]), "Northing": str(p["northing"])})
    _sub(node, L, "Metric", attrib={"Latitude": f"{p['latitude']:.6f}",
                                    "Longitude": f"{p['longitude']:.6f}"})


def _address(parent: etree._Element, p: Mapping[str, Any]) -> None:
    node = _sub(parent, L, "Address")
    for tag, key in (("Address1", "address1"), ("Address2", "address2"), ("Street", "street"),
                     ("Locality", "locality"), ("Town", "town"), ("PostCode", "postcode")):
        _sub(node, L, tag, p.get(key) or None)


def _premises_children(node: etree._Element, p: Mapping[str, Any], *, full: bool) -> None:
    _sub(node, L, "UPRN", p["uprn"])
    _sub(node, L, "USRN", p["usrn"])
    _address(node, p)
    if full:
        _sub(node, L, "UserLabel")
        for tag, prefix, code in (("Ward", "ward", "WardCode"), ("Parish", "parish", "ParishCode")):
            area = _sub(node, L, tag)
            _sub(area, L, "ID", p[f"{prefix}_id"])
            _sub(area, L, code, p[f"{prefix}_code"])
            _sub(area, L, "Name", p[f"{prefix}_name"])
            _record_stamp(area, "dbo", "2018-11-12T13:53:01.530")
    _location(node, "Location", p)
    _record_stamp(node, "dbo", "2018-11-12T14:22:23.300")


def premises_get(rows: list[Mapping[str, Any]]) -> etree._Element:
    response, result = wrap("Premises_Get", record_count=len(rows))
    for p in rows:
        _premises_children(_sub(result, result.nsmap[None], "Premises"), p, full=True)
    errors(result)
    return response


def _service_class(parent: etree._Element, t: sqlite3.Row, *, full: bool) -> None:
    node = _sub(parent, L, "ServiceClass")
    _sub(node, L, "ID", 10 + t["id"] // 10)
    _sub(node, L, "Name", t["class_name"])
    _sub(node, L, "Description", t["class_name"])
    _sub(node, L, "Category", "General")
    if full:
        _nil(node, "ExtendedDataRecordType")
    _sub(node, L, "Mobile", False)
    _sub(node, L, "Private", False)
    if full:
        _nil(node, "RecordStamp")
    else:  # inside a service request the vendor sends an empty stamp, not a nil one
        _sub(_sub(node, L, "RecordStamp"), L, "DateAdded", "0001-01-01T00:00:00")
    if full:
        _sub(node, L, "ExtendedDataRecordDefinitionID", 0)
    else:
        _nil(node, "ExtendedDataRecordDefinitionID")


def _service_type(node: etree._Element, t: sqlite3.Row, *, full: bool) -> None:
    _sub(node, L, "ID", t["id"])
    _sub(node, L, "Name", t["name"])
    _sub(node, L, "Description", t["name"].title())
    _sub(node, L, "AppointmentCount", 1 if t["kind"] == "bulky" else 0)
    _service_class(node, t, full=full)
    if full:
        crew = _sub(node, L, "DefaultCrew")
        for tag, value in (("ID", 11), ("CrewNumber", 2)):
            _sub(crew, L, tag, value)
        _nil(crew, "WorkGroup")
        for tag, value in (("Description", "Crew 2"), ("DefaultSize", 2), ("StartTime", "07:00"),
                           ("EndTime", "15:00"), ("WorkingMinutes", 420), ("NonworkingMinutes", 60)):
            _sub(crew, L, tag, value)
        _nil(crew, "RecordStamp")
        land = _sub(node, L, "DefaultLandType")
        _sub(land, L, "ID", 12)
        _sub(land, L, "Name", "Residential")
        _nil(land, "RecordStamp")
        sla = _sub(node, L, "DefaultSLA")
        for tag, value in (("ID", 13), ("Name", "SLA - 5 Working Days"),
                           ("Description", "SLA - 5 Working Days"), ("Period", "5 days"),
                           ("NormaliseTime", "17:00"), ("JeopardyPeriod", "1 days"),
                           ("WorkingHours", True)):
            _sub(sla, L, tag, value)
        _nil(sla, "RecordStamp")
        _record_stamp(node, "bartec", "2019-02-22T16:11:11.953", comments="")
        _sub(node, L, "ExtendedDataRecordDefinitionID", sample.DEFINITION_BY_KIND.get(t["kind"], 0))
    else:
        _sub(node, L, "ExtendedDataRecordDefinitionID", 0)


def service_types_get(types: list[sqlite3.Row]) -> etree._Element:
    response, result = wrap("ServiceRequests_Types_Get", record_count=len(types))
    for t in types:
        _service_type(_sub(result, result.nsmap[None], "ServiceType"), t, full=True)
    errors(result)
    return response


def service_request_create(service_code: str) -> etree._Element:
    response, result = wrap("ServiceRequest_Create", "ServiceRequests_Types_Get")
    result.set("RecordCount", "int")  # the vendor's placeholder, as recorded
    _sub(result, result.nsmap[None], "ServiceRequest_Create")
    _sub(result, result.nsmap[None], "ServiceCode", service_code)
    errors(result)
    return response


def note_create(note_id: int) -> etree._Element:
    response, result = wrap("ServiceRequest_Note_Create", record_count=1)
    _sub(result, result.nsmap[None], "NoteID", note_id)
    errors(result)
    return response


def _status_element(parent: etree._Element, service_type_id: int, status: str) -> etree._Element:
    """``ServiceStatus`` with its ID (type * 100 + sequence), word, sequence and type."""
    node = _sub(parent, L, "ServiceStatus")
    seq = STATUSES.index(status)
    _sub(node, L, "ID", service_type_id * 100 + seq)
    _sub(node, L, "Status", status)
    _sub(node, L, "SequenceNumber", seq)
    _sub(node, L, "ServiceTypeID", service_type_id)
    return node


def _status(parent: etree._Element, r: sqlite3.Row) -> None:
    node = _status_element(parent, r["service_type_id"], r["status"])
    if r["status_by"]:
        _record_stamp(node, r["status_by"], r["status_at"], comments=r["status_comment"] or "")


def status_set(r: sqlite3.Row) -> etree._Element:
    response, result = wrap("ServiceRequest_Status_Set", record_count=1)
    _status(result, r)
    errors(result)
    return response


def service_requests_get(rows: Iterable[tuple[sqlite3.Row, sqlite3.Row, Mapping[str, Any]]],
                         count: int) -> etree._Element:
    """``rows``: (request, service type, premises) triples."""
    response, result = wrap("ServiceRequests_Get", record_count=count)
    for r, t, p in rows:
        node = _sub(result, result.nsmap[None], "ServiceRequest")
        _sub(node, L, "id", r["id"])
        _sub(node, L, "ServiceCode", r["service_code"])
        _premises_children(_sub(node, L, "Premises"), p, full=False)
        _location(node, "ServiceLocation", p)
        _sub(node, L, "DateRequested", r["date_requested"])
        _service_type(_sub(node, L, "ServiceType"), t, full=False)
        _status(node, r)
        _sub(node, L, "ExternalReference", r["external_reference"] or None)
        sla = _sub(node, L, "SLA")
        added = datetime.fromisoformat(r["date_added"])
        for tag, value in (("ID", 13), ("Name", "SLA - 5 Working Days"),
                           ("Description", "SLA - 5 Working Days"), ("JeopardyPeriod", "1 days"),
                           ("WorkingHours", False), ("SLAStatus", "OK"),
                           ("BreachTime", "0001-01-01T00:00:00"),
                           ("JeopardyTime", stamp(added.replace(hour=17, minute=0, second=0,
                                                                microsecond=0)))):
            _sub(sla, L, tag, value)
        licence = _sub(node, L, "LicenceApplication")
        _sub(licence, L, "PaymentType")
        _sub(licence, L, "WebPageType")
        _record_stamp(node, r["added_by"], r["date_added"], modified_by=r["modified_by"],
                      modified=r["date_modified"])
    errors(result)
    return response


def updates_get(rows: list[sqlite3.Row]) -> etree._Element:
    response, result = wrap("ServiceRequests_Updates_Get", record_count=len(rows))
    ns = result.nsmap[None]
    for r in rows:
        node = _sub(result, ns, "ServiceRequest_Updates", attrib={"RecordCount": "0"})
        for tag, value in (("ServiceRequestID", r["id"]), ("ServiceCode", r["service_code"]),
                           ("JobReference", f"J{r['id']:07d}"), ("ServiceCategory", "General"),
                           ("ServiceClass", r["class_name"]), ("ServiceType", r["type_name"]),
                           ("DateAdded", r["date_added"]), ("DateChanged", r["date_changed"])):
            _sub(node, ns, tag, value)
    errors(result)
    return response


def slots_get(rows: list[sqlite3.Row]) -> etree._Element:
    response, result = wrap("Jobs_Slots_Get", record_count=len(rows))
    for s in rows:
        node = _sub(result, result.nsmap[None], "Slot")
        _sub(node, L, "SlotDate", s["slot_date"])
        _sub(node, L, "ServiceTypeID", s["service_type_id"])
        _sub(node, L, "Round", s["round"])
        _sub(node, L, "Capacity", s["capacity"])
        _sub(node, L, "Available", max(0, s["capacity"] - s["booked"]))
    errors(result)
    return response


def authenticate(token: str, expires: datetime) -> etree._Element:
    response, result = wrap("Authenticate", record_count=1)
    node = _sub(result, result.nsmap[None], "Token")
    _sub(node, L, "TokenString", token)
    _sub(node, L, "ExpiryDate", stamp(expires))
    errors(result)
    return response


def extended_fields(raw: str) -> list[tuple[str, str]]:
    return [tuple(pair) for pair in json.loads(raw)]  # type: ignore[misc]


def history_get(rows: list[sqlite3.Row]) -> etree._Element:
    response, result = wrap("ServiceRequests_History_Get", record_count=len(rows))
    ns = result.nsmap[None]
    for h in rows:
        node = _sub(result, ns, "ServiceRequest_History")
        _sub(node, L, "ID", h["id"])
        _sub(node, L, "ServiceRequestID", h["request_id"])
        _sub(node, L, "ServiceCode", h["service_code"])
        _status_element(node, h["service_type_id"], h["status"])
        if h["closing_code"]:
            _sub(node, L, "ClosingCode", h["closing_code"])
        else:
            _nil(node, "ClosingCode")
        _record_stamp(node, h["changed_by"], h["changed_at"], comments=h["comments"] or "")
    errors(result)
    return response


def note_types_get() -> etree._Element:
    response, result = wrap("ServiceRequests_Notes_Types_Get", record_count=len(sample.NOTE_TYPES))
    for type_id, description in sample.NOTE_TYPES:
        node = _sub(result, result.nsmap[None], "NoteType")
        _sub(node, L, "ID", type_id)
        _sub(node, L, "Description", description)
        _nil(node, "RecordStamp")
    errors(result)
    return response


def extended_data_definitions_get() -> etree._Element:
    definitions = sample.EXTENDED_DATA_DEFINITIONS
    response, result = wrap("System_ExtendedDataDefinitions_Get", record_count=len(definitions))
    for definition_id, (name, fields) in definitions.items():
        node = _sub(result, result.nsmap[None], "ExtendedDataDefinition")
        _sub(node, L, "ID", definition_id)
        _sub(node, L, "Name", name)
        holder = _sub(node, L, "Fields")
        for number, (field, data_type, mandatory, repeating) in enumerate(fields, start=1):
            entry = _sub(holder, L, "Field")
            _sub(entry, L, "ID", definition_id * 100 + number)
            _sub(entry, L, "Name", field)
            _sub(entry, L, "DataType", data_type)
            _sub(entry, L, "Mandatory", mandatory)
            _sub(entry, L, "Repeating", repeating)
        _record_stamp(node, "bartec", "2019-02-22T16:11:11.953")
    errors(result)
    return response


def statuses_get(types: list[sqlite3.Row]) -> etree._Element:
    rows = [(t["id"], status) for t in types for status in STATUSES]
    response, result = wrap("ServiceRequests_Statuses_Get", record_count=len(rows))
    for type_id, status in rows:
        node = _status_element(result, type_id, status)
        node.tag = f"{{{result.nsmap[None]}}}ServiceStatus"   # a result entry, as recorded
        _record_stamp(node, "bartec", "2019-02-22T16:11:11.953", comments="")
    errors(result)
    return response
