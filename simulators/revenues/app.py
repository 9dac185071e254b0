"""The Revenues simulator: a SOAP 1.1 service in the NEC/Northgate style, backed by SQLite.

SOAP at ``/soap`` (WSDL at ``/soap?wsdl``, the one shipped in connectors/revenues/wsdl), WS-Security
UsernameToken on every call. Admin endpoints for tests and the demo:

- ``GET /admin/stats``: ``{"effects": <requests applied>, "requests": {...}, "held": n, ...}``
- ``POST /admin/faults`` ``{"count": n, "mode": "server_fault"|"http_503"|"timeout"}``
- ``POST /admin/requests/{reference}/status`` ``{"status": "...", "note": "..."}``: a staff change
- ``GET /admin/requests/{reference}``, ``GET /admin/accounts/{account_ref}``
- drift on purpose (``simulators.kit.drift_router``): ``POST /admin/drift/records/{reference}``
  ``{"status"?, "fields"?: {"MovedOn"|"EffectiveFrom"|"AdultsResident"|"PaymentDay"|"ReliefType"|
  "AccountRef": ...}}`` changes a request with no ChangesGet entry; ``DELETE`` the same path
  deletes it; ``POST /admin/drift/records`` ``{"key", "like", "status"?}`` adds a request with
  ClientReference ``key`` copying request ``like``.
"""
from __future__ import annotations

import hmac
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from lxml import etree
from lxml.builder import ElementMaker
from pydantic import BaseModel, Field

from simulators import world
from simulators.revenues.store import (SBRR_MAX_RATEABLE_VALUE, Applied, ReferenceClash,
                                       RevenuesStore, UnknownRecord, iso, rebilled_balance,
                                       utc_now)
from simulators.kit import admin_router
from simulators.kit import drift_router
from simulators.soap import (FaultSwitch, SoapFault, SoapRequest, child, child_text, soap_app,
                             username_token)

NS = "http://revenues.example.gov.uk/northgate/v1"
WSDL_PATH = (Path(__file__).resolve().parents[2] / "connectors" / "revenues" / "wsdl"
             / "revenues.wsdl")
E = ElementMaker(namespace=NS, nsmap={None: NS})
PAYMENT_DAYS = {1, 8, 15, 22, 28}


# -- request parsing ----------------------------------------------------------------------------
def _text(req: SoapRequest, name: str, *, required: bool = True) -> str | None:
    value = child_text(req.body, name)
    if required and not value:
        raise SoapFault("Client.InvalidField", f"{name} is required")
    return value


def _date(req: SoapRequest, name: str) -> date:
    try:
        return date.fromisoformat(_text(req, name) or "")
    except ValueError as exc:
        raise SoapFault("Client.InvalidField", f"{name} is not a date") from exc


def _int(req: SoapRequest, name: str) -> int:
    try:
        return int(_text(req, name) or "")
    except ValueError as exc:
        raise SoapFault("Client.InvalidField", f"{name} is not a number") from exc


# -- response building --------------------------------------------------------------------------
def _request_element(row: dict[str, Any]) -> etree._Element:
    parts = [E.Reference(row["reference"]), E.ClientReference(row["client_reference"]),
             E.RequestType(row["request_type"]), E.AccountRef(row["account_ref"]),
             E.Status(row["status"])]
    if row.get("reason"):
        parts.append(E.Reason(row["reason"]))
    if row.get("balance_pence") is not None:
        parts.append(E.BalancePence(str(row["balance_pence"])))
    parts.append(E.CreatedAt(row["created_at"]))
    return E.Request(*parts)


_DETAIL_ORDER = ("MovedOn", "PropertyRef", "EffectiveFrom", "AdultsResident", "DiscountType",
                 "PaymentDay", "ReliefType")


def _listed_request_element(row: dict[str, Any]) -> etree._Element:
    """A request as RequestList gives it: with its last change and what it was created with."""
    element = _request_element(row)
    element.append(E.UpdatedAt(row.get("updated_at") or row["created_at"]))
    details = json.loads(row.get("details") or "{}")
    element.append(E.Details(*[getattr(E, name)(str(details[name])) for name in _DETAIL_ORDER
                               if details.get(name) is not None]))
    return element


def _moment(req: SoapRequest, name: str) -> datetime | None:
    raw = child_text(req.body, name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SoapFault("Client.InvalidField", f"{name} is not a date-time") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _bool(value: Any) -> str:
    return "true" if value else "false"


class RevenuesService:
    """The SOAP operation handlers over a ``RevenuesStore``."""

    def __init__(self, store: RevenuesStore) -> None:
        self.store = store
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    def calls(self) -> dict[str, int]:
        """How many times each operation was called (answered or faulted)."""
        with self._calls_lock:
            return dict(self._calls)

    def _counted(self, name: str, handler: Callable[[SoapRequest], etree._Element]
                 ) -> Callable[[SoapRequest], etree._Element]:
        def counted(req: SoapRequest) -> etree._Element:
            with self._calls_lock:
                self._calls[name] += 1
            return handler(req)
        return counted

    def handlers(self) -> dict[str, Callable[[SoapRequest], etree._Element]]:
        return {name: self._counted(name, handler) for name, handler in self._handlers().items()}

    def _handlers(self) -> dict[str, Callable[[SoapRequest], etree._Element]]:
        return {"SystemCheck": self.system_check, "AccountGet": self.account_get,
                "RequestFind": self.request_find, "MoveOut": self.move_out,
                "MoveIn": self.move_in, "AccountRebill": self.account_rebill,
                "DiscountApply": self.discount_apply, "DirectDebitCreate": self.direct_debit_create,
                "ReliefApply": self.relief_apply, "ChangesGet": self.changes_get,
                "RequestList": self.request_list}

    # -- reads -----------------------------------------------------------------------------------
    def system_check(self, req: SoapRequest) -> etree._Element:
        return E.SystemCheckResponse(E.SystemName("Revenues (simulator)"), E.Version("1.0"),
                                     E.ServerTime(iso(utc_now())))

    def account_get(self, req: SoapRequest) -> etree._Element:
        ref = _text(req, "AccountRef") or ""
        ctax = self.store.ctax_account(ref)
        if ctax is not None:
            parts = [E.AccountRef(ref), E.AccountType("CTAX"), E.Status(ctax["status"])]
            if ctax["property_ref"]:
                parts.append(E.PropertyRef(ctax["property_ref"]))
            parts += [E.Band(ctax["band"]), E.Adults(str(ctax["adults"])),
                      E.BalancePence(str(ctax["balance_pence"])),
                      E.SinglePersonDiscount(_bool(ctax["single_person_discount"])),
                      E.DirectDebit(_bool(ctax["direct_debit_day"]))]
            return E.AccountGetResponse(E.Account(*parts))
        nndr = self.store.nndr_account(ref)
        if nndr is not None:
            parts = [E.AccountRef(ref), E.AccountType("NNDR"), E.Status(nndr["status"]),
                     E.RateableValue(str(nndr["rateable_value"]))]
            if nndr["relief"]:
                parts.append(E.Relief(nndr["relief"]))
            return E.AccountGetResponse(E.Account(*parts))
        raise SoapFault("Client.UnknownAccount", f"account {ref} not found")

    def request_find(self, req: SoapRequest) -> etree._Element:
        rows = self.store.find_requests(_text(req, "ClientReference") or "")
        return E.RequestFindResponse(*[_request_element(r) for r in rows])

    def request_list(self, req: SoapRequest) -> etree._Element:
        try:
            limit = int(child_text(req.body, "MaxResults") or "")
        except ValueError as exc:
            raise SoapFault("Client.InvalidField", "MaxResults is not a number") from exc
        if not 1 <= limit <= 1000:
            raise SoapFault("Client.InvalidField", "MaxResults must be 1 to 1000")
        rows, more = self.store.list_requests(
            client_reference=child_text(req.body, "ClientReference") or None,
            changed_from=_moment(req, "ChangedFrom"), changed_to=_moment(req, "ChangedTo"),
            after=child_text(req.body, "AfterReference") or None, limit=limit)
        return E.RequestListResponse(*[_listed_request_element(r) for r in rows],
                                     E.MoreAvailable("true" if more else "false"))

    def changes_get(self, req: SoapRequest) -> etree._Element:
        raw = _text(req, "Since") or ""
        try:
            since = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SoapFault("Client.InvalidField", "Since is not a date-time") from exc
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        items = []
        for row in self.store.changes_since(since):
            parts = [E.ChangeId(f"CH{row['id']:08d}"), E.Reference(row["reference"]),
                     E.ClientReference(row["client_reference"]), E.RequestType(row["request_type"]),
                     E.Status(row["status"])]
            if row["note"]:
                parts.append(E.Note(row["note"]))
            parts.append(E.ChangedAt(row["changed_at"]))
            items.append(E.Change(*parts))
        return E.ChangesGetResponse(*items)

    # -- creates ---------------------------------------------------------------------------------
    def _respond(self, req: SoapRequest, request_type: str, account_ref: str,
                 apply: Callable[[sqlite3.Connection], Applied]) -> etree._Element:
        """Create (or find) the request for the call's ClientReference and answer with it."""
        client_reference = _text(req, "ClientReference") or ""
        details = {name: child_text(req.body, name) for name in _DETAIL_ORDER
                   if child_text(req.body, name)}
        try:
            row, _created = self.store.create(client_reference, request_type, account_ref, apply,
                                              details)
        except ReferenceClash as exc:
            raise SoapFault("Client.DuplicateReference",
                            "ClientReference already used for another request type") from exc
        response = etree.Element(f"{{{NS}}}{req.operation}Response", nsmap={None: NS})
        response.append(_request_element(row))
        return response

    def _ctax(self, db: sqlite3.Connection, ref: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM ctax_accounts WHERE account_ref = ?", (ref,)).fetchone()
        if row is None:
            raise SoapFault("Client.UnknownAccount", f"account {ref} not found")
        return row

    def move_out(self, req: SoapRequest) -> etree._Element:
        ref, moved_on = _text(req, "AccountRef") or "", _date(req, "MovedOn")
        if child(req.body, "ForwardingAddress") is not None:
            _text_in(child(req.body, "ForwardingAddress"), "Postcode")

        def apply(db: sqlite3.Connection) -> Applied:
            account = self._ctax(db, ref)
            if account["hold_moves"]:
                return Applied("HELD", "move held for review: occupancy dispute on the account")
            if account["status"] != "LIVE":
                raise SoapFault("Client.AccountNotLive", f"account {ref} is not live")
            db.execute("UPDATE ctax_accounts SET status = 'MOVED_OUT', property_ref = NULL,"
                       " moved_out_on = ? WHERE account_ref = ?", (moved_on.isoformat(), ref))
            return Applied()

        return self._respond(req, "MOVE_OUT", ref, apply)

    def move_in(self, req: SoapRequest) -> etree._Element:
        ref, prop = _text(req, "AccountRef") or "", _text(req, "PropertyRef") or ""
        moved_on = _date(req, "MovedOn")

        def apply(db: sqlite3.Connection) -> Applied:
            self._ctax(db, ref)
            if db.execute("SELECT 1 FROM properties WHERE property_ref = ?", (prop,)).fetchone() is None:
                raise SoapFault("Client.UnknownProperty", f"property {prop} not found")
            db.execute("UPDATE ctax_accounts SET status = 'LIVE', property_ref = ?, liable_from = ?"
                       " WHERE account_ref = ?", (prop, moved_on.isoformat(), ref))
            return Applied()

        return self._respond(req, "MOVE_IN", ref, apply)

    def account_rebill(self, req: SoapRequest) -> etree._Element:
        ref = _text(req, "AccountRef") or ""

        def apply(db: sqlite3.Connection) -> Applied:
            account = dict(self._ctax(db, ref))
            on_text = (account["liable_from"] if account["status"] == "LIVE"
                       else account["moved_out_on"]) or utc_now().date().isoformat()
            balance = rebilled_balance(account, date.fromisoformat(on_text))
            db.execute("UPDATE ctax_accounts SET balance_pence = ? WHERE account_ref = ?",
                       (balance, ref))
            return Applied(balance_pence=balance)

        return self._respond(req, "REBILL", ref, apply)

    def discount_apply(self, req: SoapRequest) -> etree._Element:
        ref, kind = _text(req, "AccountRef") or "", _text(req, "DiscountType")
        _date(req, "EffectiveFrom")
        adults = _int(req, "AdultsResident")
        if kind != "SPD":
            raise SoapFault("Client.InvalidField", "DiscountType must be SPD")

        def apply(db: sqlite3.Connection) -> Applied:
            account = self._ctax(db, ref)
            if adults > 1 or account["adults"] > 1:
                raise SoapFault("Client.NotEligible",
                                "single person discount refused: more than one adult resident")
            db.execute("UPDATE ctax_accounts SET single_person_discount = 1 WHERE account_ref = ?",
                       (ref,))
            return Applied()

        return self._respond(req, "DISCOUNT", ref, apply)

    def direct_debit_create(self, req: SoapRequest) -> etree._Element:
        ref = _text(req, "AccountRef") or ""
        _text(req, "AccountHolder")
        sort_code, number = _text(req, "SortCode") or "", _text(req, "AccountNumber") or ""
        day = _int(req, "PaymentDay")
        if not (sort_code.isdigit() and len(sort_code) == 6):
            raise SoapFault("Client.InvalidField", "SortCode must be 6 digits")
        if not (number.isdigit() and len(number) == 8):
            raise SoapFault("Client.InvalidField", "AccountNumber must be 8 digits")
        if day not in PAYMENT_DAYS:
            raise SoapFault("Client.InvalidField", "PaymentDay is not an instalment day")

        def apply(db: sqlite3.Connection) -> Applied:
            self._ctax(db, ref)
            db.execute("UPDATE ctax_accounts SET direct_debit_day = ? WHERE account_ref = ?",
                       (day, ref))
            return Applied()

        return self._respond(req, "DIRECT_DEBIT", ref, apply)

    def relief_apply(self, req: SoapRequest) -> etree._Element:
        ref, relief = _text(req, "AccountRef") or "", _text(req, "ReliefType") or ""
        _date(req, "EffectiveFrom")
        if relief not in ("SBRR", "CHARITABLE", "RURAL", "HARDSHIP"):
            raise SoapFault("Client.InvalidField", "ReliefType is not a known relief")

        def apply(db: sqlite3.Connection) -> Applied:
            account = db.execute("SELECT * FROM nndr_accounts WHERE account_ref = ?",
                                 (ref,)).fetchone()
            if account is None:
                raise SoapFault("Client.UnknownAccount", f"account {ref} not found")
            if relief == "SBRR" and account["rateable_value"] > SBRR_MAX_RATEABLE_VALUE:
                raise SoapFault("Client.NotEligible", "small business rate relief refused: "
                                "rateable value above the threshold")
            db.execute("UPDATE nndr_accounts SET relief = ? WHERE account_ref = ?", (relief, ref))
            return Applied()

        return self._respond(req, "RELIEF", ref, apply)


def _text_in(node: etree._Element | None, name: str) -> str:
    value = child_text(node, name) if node is not None else None
    if not value:
        raise SoapFault("Client.InvalidField", f"ForwardingAddress.{name} is required")
    return value


# -- the app ------------------------------------------------------------------------------------
class StatusChange(BaseModel):
    status: str = Field(min_length=1, max_length=40, pattern=r"^[A-Z_]+$")
    note: str | None = Field(default=None, max_length=500)


def _authenticator(username: str, password: str) -> Any:
    def authenticate(req: SoapRequest) -> None:
        token = username_token(req)
        ok = token is not None and hmac.compare_digest(token[0].encode(), username.encode()) \
            and hmac.compare_digest(token[1].encode(), password.encode())
        if not ok:
            raise SoapFault("Client.Authentication", "authentication failed")
    return authenticate


def create_app(db_path: Path, *, username: str, password: str, seed_demo: bool = False,
               fault_delay_seconds: float = 3.0) -> FastAPI:
    """The Revenues simulator app over the SQLite file ``db_path`` (created when missing)."""
    store = RevenuesStore(Path(db_path))
    if seed_demo:
        store.seed(world.ctax_accounts(), world.nndr_accounts(), world.properties())
    service = RevenuesService(store)
    faults = FaultSwitch(default_delay_seconds=fault_delay_seconds)
    app = soap_app(wsdl_text=WSDL_PATH.read_text(encoding="utf-8"), handlers=service.handlers(),
                   authenticate=_authenticator(username, password),
                   title="Revenues simulator (NEC/Northgate style)", faults=faults)
    app.state.store = store
    app.state.faults = faults
    app.include_router(admin_router(
        stats=lambda: {**store.stats(), "calls": service.calls(), "faults_pending": faults.pending},
        faults=faults))

    @app.post("/admin/requests/{reference}/status")
    def change_status(reference: str, body: StatusChange) -> dict[str, Any]:
        try:
            return store.set_status(reference, body.status, body.note)
        except UnknownRecord as exc:
            raise HTTPException(404, f"request {reference} not found") from exc

    @app.get("/admin/requests/{reference}")
    def get_request(reference: str) -> dict[str, Any]:
        row = store.request(reference)
        if row is None:
            raise HTTPException(404, f"request {reference} not found")
        return row

    @app.get("/admin/accounts/{account_ref}")
    def get_account(account_ref: str) -> dict[str, Any]:
        row = store.ctax_account(account_ref) or store.nndr_account(account_ref)
        if row is None:
            raise HTTPException(404, f"account {account_ref} not found")
        return row

    def drift_add(key: str, like: str, status: str | None) -> dict[str, Any]:
        try:
            return store.drift_add(key, like, status)
        except ReferenceClash as exc:
            raise ValueError("that ClientReference is already used") from exc

    app.include_router(drift_router(change=store.drift_change, delete=store.drift_delete,
                                    add=drift_add))

    @app.post("/admin/seed")
    def seed() -> dict[str, Any]:
        store.seed(world.ctax_accounts(), world.nndr_accounts(), world.properties())
        return store.stats()

    return app
