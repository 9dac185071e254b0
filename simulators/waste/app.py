"""The waste simulator: a Bartec Collective-style SOAP service on FastAPI, state in SQLite.

SOAP at ``/soap`` (``GET /soap?wsdl`` serves a self-contained WSDL). Every operation but
``Authenticate`` takes the token that ``Authenticate`` returns. Admin endpoints for tests and the
demo: ``GET /admin/stats``, ``POST /admin/faults``, ``POST /admin/requests/{service_code}/status``
(a crew/staff change), ``GET /admin/requests/{service_code}``, ``POST /admin/tokens/expire``,
``POST /admin/notes/fail``.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from lxml import etree
from pydantic import BaseModel, Field

from simulators.kit import admin_router, drift_router
from simulators.soap import FaultSwitch, SoapFault, SoapRequest, child, child_text, soap_app
from simulators.waste import responses
from simulators.waste.store import (GENERAL, STAFF_USER, BartecError, NewRequest, WasteStore,
                                    parse_moment)

log = logging.getLogger(__name__)

#: The vendor's published service description (WSDL + XSDs). It is a document the vendor hands out,
#: kept in the repository beside the connector that consumes it; the simulator serves that document
#: but builds and reads every message itself (responses.py, by local name), so a connector that
#: misreads the vendor's shapes fails against it.
WSDL_DIR = Path(__file__).resolve().parents[2] / "connectors" / "waste" / "wsdl"

#: Which result namespace each operation answers in (the vendor reuses one for the create).
_RESULT_OP = {"ServiceRequest_Create": "ServiceRequests_Types_Get"}


def inline_wsdl(wsdl_dir: Path = WSDL_DIR) -> str:
    """The WSDL with every XSD it imports inlined, so that remote clients need one document."""
    schemas = []
    for xsd in sorted(wsdl_dir.glob("*.xsd")):
        text = re.sub(r"^\s*<\?xml[^>]*\?>", "", xsd.read_text(encoding="utf-8"))
        schemas.append(re.sub(r'\s+schemaLocation="[^"]*"', "", text))
    wsdl = (wsdl_dir / "CollectiveAPI.wsdl").read_text(encoding="utf-8")
    wsdl = re.sub(r'\s+schemaLocation="[^"]*"', "", wsdl)
    wsdl = re.sub(r"^\s*<\?xml[^>]*\?>", "", wsdl)
    return wsdl.replace("</wsdl:types>", "\n".join(schemas) + "\n  </wsdl:types>", 1)


class StatusChange(BaseModel):
    status: str = Field(min_length=1, max_length=40)
    note: str | None = Field(default=None, max_length=2000)
    closing_code: str | None = Field(default=None, max_length=40)


class NoteFailures(BaseModel):
    count: int = Field(ge=0, le=1000)


class _NoteSwitch:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending = 0

    def take(self) -> bool:
        with self._lock:
            if self.pending:
                self.pending -= 1
                return True
            return False


def _int(value: str | None, name: str) -> int:
    try:
        return int(value or "")
    except ValueError as exc:
        raise BartecError(GENERAL, f"{name} must be an integer") from exc


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def create_app(db_path: str | Path, *, username: str, password: str, seed_demo: bool = False,
               token_ttl_seconds: float = 3600.0) -> FastAPI:
    """The simulator app; ``username``/``password`` are the one API login it accepts."""
    store = WasteStore(db_path, token_ttl_seconds=token_ttl_seconds)
    if seed_demo:
        store.seed_demo()
    faults = FaultSwitch()
    note_failures = _NoteSwitch()

    def authenticate(req: SoapRequest) -> etree._Element:
        if child_text(req.body, "user") != username or child_text(req.body, "password") != password:
            return responses.error_response("Authenticate", 1, "Invalid user name or password")
        return responses.authenticate(*store.issue_token(username))

    def premises_get(req: SoapRequest, user: str) -> etree._Element:
        return responses.premises_get(store.premises(uprn=child_text(req.body, "UPRN"),
                                                     postcode=child_text(req.body, "PostCode")))

    def types_get(req: SoapRequest, user: str) -> etree._Element:
        return responses.service_types_get(store.service_types())

    def create(req: SoapRequest, user: str) -> etree._Element:
        extended: list[tuple[str, str]] = []
        data = child(req.body, "ExtendedData")
        for field in (data if data is not None else []):
            name, value = child_text(field, "FieldName"), child_text(field, "FieldValue")
            if name:
                extended.append((name, value or ""))
        contact_node = child(req.body, "reporterContact")
        contact = {etree.QName(n).localname: (n.text or "") for n in
                   (contact_node if contact_node is not None else []) if isinstance(n.tag, str)}
        code = store.create_request(NewRequest(
            service_type_id=_int(child_text(req.body, "ServiceTypeID"), "ServiceTypeID"),
            uprn=child_text(req.body, "UPRN") or "", extended=extended, contact=contact,
            external_reference=child_text(req.body, "ExternalReference") or None, username=user))
        return responses.service_request_create(code)

    def note_create(req: SoapRequest, user: str) -> etree._Element:
        if note_failures.take():
            raise SoapFault("Server", "notes are unavailable")
        note_type = child_text(req.body, "NoteTypeID")
        return responses.note_create(store.add_note(
            child_text(req.body, "ServiceCode") or "", child_text(req.body, "Note") or "", user,
            _int(note_type, "NoteTypeID") if note_type else None))

    def status_set(req: SoapRequest, user: str) -> etree._Element:
        row = store.set_status(child_text(req.body, "ServiceCode") or "",
                               child_text(req.body, "Status") or "", user,
                               child_text(req.body, "Comments"))
        return responses.status_set(row)

    def requests_get(req: SoapRequest, user: str) -> etree._Element:
        window = child(req.body, "DateRequested")
        bounds = []
        for name in ("MinimumDate", "MaximumDate"):
            raw = child_text(window, name) if window is not None else None
            try:
                bounds.append(parse_moment(raw) if raw else None)
            except ValueError as exc:
                raise BartecError(GENERAL, f"DateRequested {name} must be a date and time") from exc
        rows = store.requests(service_code=child_text(req.body, "ServiceCode"),
                              external_reference=child_text(req.body, "ExternalReference"),
                              requested_from=bounds[0], requested_to=bounds[1])
        triples = [(r, store.service_type(r["service_type_id"]), store.premises(uprn=r["uprn"])[0])
                   for r in rows]
        return responses.service_requests_get(triples, len(triples))

    def updates_get(req: SoapRequest, user: str) -> etree._Element:
        try:
            since = parse_moment(child_text(req.body, "LastUpdated") or "")
        except ValueError as exc:
            raise BartecError(GENERAL, "LastUpdated must be a date and time") from exc
        return responses.updates_get(store.changed_since(since))

    def history_get(req: SoapRequest, user: str) -> etree._Element:
        try:
            since = parse_moment(child_text(req.body, "Date") or "")
        except ValueError as exc:
            raise BartecError(GENERAL, "Date must be a date and time") from exc
        return responses.history_get(store.history(child_text(req.body, "ServiceCode"), since))

    def statuses_get(req: SoapRequest, user: str) -> etree._Element:
        type_id = child_text(req.body, "ServiceTypeID")
        types = ([store.service_type(_int(type_id, "ServiceTypeID"))] if type_id
                 else store.service_types())
        return responses.statuses_get(types)

    def note_types_get(req: SoapRequest, user: str) -> etree._Element:
        return responses.note_types_get()

    def definitions_get(req: SoapRequest, user: str) -> etree._Element:
        return responses.extended_data_definitions_get()

    def slots_get(req: SoapRequest, user: str) -> etree._Element:
        type_id = _int(child_text(req.body, "ServiceTypeID"), "ServiceTypeID")
        store.service_type(type_id)
        try:
            window = (_date(child_text(req.body, "DateFrom")), _date(child_text(req.body, "DateTo")))
        except ValueError as exc:
            raise BartecError(GENERAL, "DateFrom and DateTo must be dates") from exc
        return responses.slots_get(store.slots(type_id, child_text(req.body, "UPRN") or "", *window))

    def with_token(operation: str,
                   handler: Callable[[SoapRequest, str], etree._Element]) -> Callable[[SoapRequest], etree._Element]:
        def run(req: SoapRequest) -> etree._Element:
            try:
                return handler(req, store.user_for(child_text(req.body, "token")))
            except BartecError as exc:
                return responses.error_response(operation, exc.result, exc.message,
                                                _RESULT_OP.get(operation), exc.service_code)
        return run

    handlers = {"Authenticate": authenticate}
    for operation, handler in {
        "Premises_Get": premises_get, "ServiceRequests_Types_Get": types_get,
        "ServiceRequest_Create": create, "ServiceRequest_Note_Create": note_create,
        "ServiceRequest_Status_Set": status_set, "ServiceRequests_Get": requests_get,
        "ServiceRequests_Updates_Get": updates_get, "Jobs_Slots_Get": slots_get,
        "ServiceRequests_History_Get": history_get,
        "ServiceRequests_Statuses_Get": statuses_get,
        "ServiceRequests_Notes_Types_Get": note_types_get,
        "System_ExtendedDataDefinitions_Get": definitions_get,
    }.items():
        handlers[operation] = with_token(operation, handler)

    app = soap_app(wsdl_text=inline_wsdl(), handlers=handlers, path="/soap",
                   title="Waste back office simulator (Bartec Collective style)", faults=faults)
    app.state.store = store
    app.state.faults = faults
    app.include_router(admin_router(stats=store.stats, faults=faults))
    app.include_router(drift_router(change=store.drift_change, delete=store.drift_delete,
                                    add=store.drift_add))

    @app.post("/admin/requests/{service_code}/status")
    def staff_change(service_code: str, body: StatusChange) -> dict[str, Any]:
        try:
            row = store.set_status(service_code, body.status, STAFF_USER, body.note,
                                   body.closing_code)
            if body.note:
                store.add_note(service_code, body.note, STAFF_USER)
        except BartecError as exc:
            raise HTTPException(404 if exc.result == 8 else 422, exc.message) from exc
        return {"service_code": service_code, "status": row["status"]}

    @app.get("/admin/requests/{service_code}")
    def request_detail(service_code: str) -> dict[str, Any]:
        rows = store.requests(service_code=service_code)
        if not rows:
            raise HTTPException(404, "service request not found")
        detail = dict(rows[0])
        detail["extended"] = json.loads(detail["extended"])
        detail["contact"] = json.loads(detail["contact"])
        detail["notes"] = [dict(n) for n in store.notes(service_code)]
        return detail

    @app.post("/admin/tokens/expire")
    def expire_tokens() -> dict[str, int]:
        return {"expired": store.expire_tokens()}

    @app.post("/admin/notes/fail")
    def fail_notes(body: NoteFailures) -> dict[str, int]:
        note_failures.pending = body.count
        return {"pending": note_failures.pending}

    return app
