"""Revenues (Council Tax + Business Rates) back office, NEC/Northgate style, over SOAP.

Each command's key travels as the SOAP ``ClientReference``; the back office returns the existing
request for a reference it has seen, so a resend applies nothing new. A change of address is three
steps, each with its own reference: Move Out (``<key>/out``), Move In (``<key>/in``, only when the
new property is in the area) and Account Rebill (``<key>/bill``). When the outcome of a call is
unknown (timeout after sending, or ``Command.maybe_sent``) the connector asks ``RequestFind`` first.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator

from connectors.base import (BackOfficeRecord, Command, Connector, Outcome, OutcomeStatus,
                             SecretConfig, Update)
from connectors.errors import (Rejected, UnknownOutcomeError, UnreadableAnswer,
                               unknown_outcome_if_unreadable)
from connectors.revenues.operations import (OPERATIONS, BusinessRatesRelief, ChangeOfAddress,
                                            CtaxAccountRef, DirectDebitSetup, NndrAccountRef,
                                            SinglePersonDiscount)
from connectors.transports.soap import soap_call, soap_client
from connectors.transports.xmlreader import Node

log = logging.getLogger(__name__)

WSDL_PATH = Path(__file__).resolve().parent / "wsdl" / "revenues.wsdl"

#: Back-office request statuses that mean the CRM case can close.
CLOSED_STATUSES = frozenset({"COMPLETED", "CLOSED", "CANCELLED", "REJECTED", "REFUSED",
                             "WITHDRAWN"})
HELD = "HELD"
#: Step suffixes of a change of address, in order; the first is the move's main reference.
MOVE_STEPS = ("out", "in", "bill")

#: RequestList answers at most this many requests per call (the service's MaxResults limit).
MAX_LIST_PAGE = 1000
#: Request type -> the operation whose main request it is (steps /in and /bill are not listed).
REQUEST_OPERATIONS = {"MOVE_OUT": "ctax.change_of_address",
                      "DISCOUNT": "ctax.single_person_discount",
                      "DIRECT_DEBIT": "ctax.direct_debit",
                      "RELIEF": "nndr.relief_application"}
#: RequestList ``Details`` element -> payload field, per request type (bank details are never
#: listed by the back office, so they are not compared).
_DETAIL_FIELDS = {"MOVE_OUT": {"MovedOn": "moved_on"},
                  "DISCOUNT": {"EffectiveFrom": "effective_from",
                               "AdultsResident": "adults_resident"},
                  "DIRECT_DEBIT": {"PaymentDay": "payment_day"},
                  "RELIEF": {"ReliefType": "relief_type", "EffectiveFrom": "effective_from"}}
_INTEGER_FIELDS = {"adults_resident", "payment_day"}

_CTAX_REF = TypeAdapter(CtaxAccountRef)
_NNDR_REF = TypeAdapter(NndrAccountRef)


class NorthgateConfig(SecretConfig):
    """Connection settings: host = full SOAP endpoint URL, login/password = WS-Security user."""

    connection_fields: ClassVar[Mapping[str, str]] = {
        "host": "endpoint", "login": "username", "password": "password"}

    endpoint: str
    """Full SOAP URL, e.g. ``https://revenues.council.example/ws/soap``."""
    concurrent_sends: int = Field(default=4, ge=1, le=16)
    """Commands for different accounts sent at once (one keep-alive connection each)."""

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("endpoint must be an http(s) URL")
        return value


def crm_status(status: str) -> str:
    """The CRM status (``open``/``closed``) for a back-office request status."""
    return "closed" if status.upper() in CLOSED_STATUSES else "open"


def command_key(client_reference: str) -> str:
    """The command key behind a ClientReference (strips a change-of-address step suffix)."""
    base, sep, step = client_reference.rpartition("/")
    return base if sep and step in MOVE_STEPS else client_reference


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None \
        else moment.astimezone(timezone.utc)


def _records_changed(command: Command) -> list[str]:
    """The accounts and properties a command changes: commands sharing one are sent in order."""
    payload = command.payload
    return [f"{name}:{str(payload[name]).strip().upper()}"
            for name in ("account_ref", "new_property_ref") if payload.get(name)]


@dataclass(frozen=True)
class _Request:
    """The part of a back-office request the hub uses (read tolerantly from a ``Request``)."""

    reference: str
    client_reference: str
    status: str
    reason: str | None
    balance_pence: int | None

    @classmethod
    def read(cls, node: Node) -> "_Request":
        return cls(reference=node.reference("Reference"),
                   client_reference=node.required("ClientReference"),
                   status=node.status("Status"), reason=node.text("Reason"),
                   balance_pence=node.integer("BalancePence"))


class NorthgateConnector(Connector[NorthgateConfig]):
    """Council Tax and Business Rates changes through the Revenues SOAP service."""

    system = "revenues_northgate"
    Config = NorthgateConfig
    operations = OPERATIONS
    lookup_kinds = ("ctax.account", "nndr.account")

    def __init__(self, config: NorthgateConfig) -> None:
        super().__init__(config)
        #: Keys whose last create timed out after sending: look before creating again.
        self._unsure: set[str] = set()

    # -- plumbing --------------------------------------------------------------------------------
    def _call(self, operation: str, /, *, write: bool = False, **params: Any) -> Node:
        client = soap_client(WSDL_PATH, self.config.endpoint, timeout=self.config.timeout_seconds,
                             username=self.config.username,
                             password=self.config.password.get_secret_value(),
                             max_answer_bytes=self.config.max_answer_bytes,
                             max_answer_depth=self.config.max_answer_depth)
        return soap_call(client, operation, write=write, **params)

    def _read(self, operation: str, /, **params: Any) -> Node:
        """A read-only call, retried on transient errors."""
        return self.retrying()(self._call, operation, **params)

    def _find(self, key: str) -> dict[str, _Request]:
        """Requests the back office holds for ``key``, by ClientReference. An entry that cannot
        be read is set aside: the back office answers a repeated ClientReference with the
        request it holds, so sending again cannot create a second one."""
        found: dict[str, _Request] = {}
        for node in self._call("RequestFind", ClientReference=key).children("Request"):
            try:
                request = _Request.read(node)
            except UnreadableAnswer as exc:
                self.set_aside(operation="RequestFind", entry=f"{key} {node.path}",
                               field=exc.field, reason=exc.message, code=exc.code)
                continue
            found[request.client_reference] = request
        return found

    # -- the contract ----------------------------------------------------------------------------
    def check(self) -> None:
        answer = self._call("SystemCheck")
        log.info("%s reachable (version %s)", self.system_id(), answer.text("Version") or "?")

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        return self.submit_each(commands, self._apply, lanes=self.config.concurrent_sends,
                                records=_records_changed)

    def fetch_updates(self, since: datetime) -> list[Update]:
        updates = []
        for change in self._read("ChangesGet", Since=_utc(since)).children("Change"):
            try:
                status = change.status("Status")
                updates.append(Update(
                    system=self.system_id(), update_id=change.required("ChangeId")[:160],
                    reference=change.reference("Reference"),
                    key=command_key(change.required("ClientReference")), status=status,
                    crm_status=crm_status(status),
                    changed_at=_utc(change.datetime("ChangedAt", required=True)),  # type: ignore[arg-type]
                    note=change.text("Note")))
            except UnreadableAnswer as exc:
                self.set_aside(operation="ChangesGet", entry=change.path, field=exc.field,
                               reason=exc.message, code=exc.code)
        updates.sort(key=lambda u: u.changed_at)
        log.info("%s: %d changes since %s", self.system_id(), len(updates), since.isoformat())
        return updates

    def lookup(self, kind: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """``ctax.account`` / ``nndr.account`` with ``{"account_ref": ...}``: the account's
        non-personal facts, or None when the back office does not know it."""
        adapters = {"ctax.account": _CTAX_REF, "nndr.account": _NNDR_REF}
        if kind not in adapters:
            return super().lookup(kind, params)
        try:
            ref = adapters[kind].validate_python(params.get("account_ref"))
        except ValidationError as exc:
            raise Rejected(f"{kind}: field account_ref is not a valid reference",
                           code="invalid-field", field="account_ref") from exc
        try:
            account = self._read("AccountGet", AccountRef=ref)
        except Rejected as exc:
            if exc.code == "UnknownAccount":
                return None
            raise
        account = account.need("Account")
        if kind == "ctax.account":
            return {"account_ref": account.required("AccountRef"),
                    "status": account.required("Status"), "band": account.text("Band"),
                    "balance_pence": account.integer("BalancePence"),
                    "property_ref": account.text("PropertyRef"),
                    "single_person_discount": bool(account.boolean("SinglePersonDiscount")),
                    "direct_debit": bool(account.boolean("DirectDebit"))}
        return {"account_ref": account.required("AccountRef"),
                "status": account.required("Status"),
                "rateable_value": account.integer("RateableValue"),
                "relief": account.text("Relief")}

    def snapshot(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """``{key: {"reference", "status"}}`` for keys the back office knows (others are absent);
        a change of address reports its Move Out request."""
        result: dict[str, Mapping[str, Any]] = {}
        for key in keys:
            found = self.retrying()(self._find, key)
            main = found.get(key) or found.get(f"{key}/{MOVE_STEPS[0]}")
            if main is not None:
                result[key] = {"reference": main.reference, "status": main.status}
        return result

    def records(self, *, since: datetime | None = None,
                page_size: int = 500) -> Iterator[BackOfficeRecord]:
        """Every request the hub made (one per command: a change of address is listed by its
        Move Out), read with ``RequestList`` in Reference order, ``page_size`` at a time, keyset
        on the last Reference. The window is fixed when the read starts: changed at or after
        ``since`` (when given) and before the start, so a request changed during the read is
        left for the next run rather than listed twice. An entry that cannot be read is set
        aside (reported) and the read goes on."""
        size = self.page_size_for(page_size, maximum=MAX_LIST_PAGE)
        window: dict[str, Any] = {"ChangedTo": datetime.now(timezone.utc)}
        if since is not None:
            window["ChangedFrom"] = _utc(since)
        after: str | None = None
        while True:
            params = dict(window, MaxResults=size)
            if after is not None:
                params["AfterReference"] = after
            answer = self._read("RequestList", **params)
            nodes = answer.children("Request")
            for node in nodes:
                record = self._listed(node)
                if record is not None:
                    yield record
            if not nodes or answer.boolean("MoreAvailable") is not True:
                return
            last = nodes[-1].text("Reference")
            if not last or (after is not None and last <= after):
                raise UnreadableAnswer("RequestList: the page does not move past the last "
                                       "Reference", code="pagination-loop", field="Reference")
            after = last

    def _listed(self, node: Node) -> BackOfficeRecord | None:
        try:
            request = _Request.read(node)
            kind = node.required("RequestType").strip().upper()
            client_reference = request.client_reference
            _base, sep, step = client_reference.rpartition("/")
            if sep and step in MOVE_STEPS[1:]:
                return None   # a step of a change of address: its Move Out stands for it
            fields: dict[str, Any] = {"account_ref": node.required("AccountRef")}
            details = node.child("Details")
            for element, name in _DETAIL_FIELDS.get(kind, {}).items():
                if details is None or details.text(element) is None:
                    continue
                if name in _INTEGER_FIELDS:
                    fields[name] = details.integer(element)
                elif name in ("moved_on", "effective_from"):
                    fields[name] = details.date(element).isoformat()  # type: ignore[union-attr]
                else:
                    fields[name] = details.text(element)
            changed = node.datetime("UpdatedAt") or node.datetime("CreatedAt")
        except UnreadableAnswer as exc:
            self.set_aside(operation="RequestList", entry=node.path, field=exc.field,
                           reason=exc.message, code=exc.code)
            return None
        return BackOfficeRecord(reference=request.reference, key=command_key(client_reference),
                                status=request.status, fields=fields,
                                crm_status=crm_status(request.status),
                                changed_at=_utc(changed) if changed else None,
                                operation=REQUEST_OPERATIONS.get(kind))

    # -- operations ------------------------------------------------------------------------------
    def _apply(self, command: Command) -> Outcome:
        model = self.validate(command)
        known = self._find(command.key) if (command.maybe_sent or command.key in self._unsure) else {}
        handlers: dict[type[BaseModel], Callable[[Command, Any, dict[str, Any]], Outcome]] = {
            ChangeOfAddress: self._change_of_address,
            SinglePersonDiscount: self._single_person_discount,
            DirectDebitSetup: self._direct_debit,
            BusinessRatesRelief: self._relief,
        }
        outcome = handlers[type(model)](command, model, known)
        self._unsure.discard(command.key)
        log.info("%s %s %s -> %s %s", self.system_id(), command.operation, command.key,
                 outcome.status.value, outcome.reference)
        return outcome

    def _step(self, command: Command, known: dict[str, _Request], client_reference: str,
              operation: str, **params: Any) -> _Request:
        """One create, skipped when the back office already holds ``client_reference``."""
        answer = known.get(client_reference)
        if answer is None:
            try:
                node = self._call(operation, write=True, ClientReference=client_reference,
                                  **params)
                with unknown_outcome_if_unreadable(operation):
                    answer = _Request.read(node.need("Request"))
            except UnknownOutcomeError:
                self._unsure.add(command.key)
                raise
        if answer.status == HELD:
            raise Rejected(f"{operation} held for staff review (request {answer.reference}): "
                           f"{answer.reason or 'no reason given'}", code=HELD, held=True)
        return answer

    def _change_of_address(self, command: Command, model: ChangeOfAddress,
                           known: dict[str, _Request]) -> Outcome:
        key, ref = command.key, model.account_ref
        forwarding = None
        if model.forwarding_address is not None:
            address = model.forwarding_address
            forwarding = {"Line1": address.line1, "Line2": address.line2 or None,
                          "Town": address.town, "Postcode": address.postcode}
        out = self._step(command, known, f"{key}/out", "MoveOut", AccountRef=ref,
                         MovedOn=model.moved_on, ForwardingAddress=forwarding)
        details: dict[str, Any] = {"move_out_reference": out.reference}
        try:
            if model.new_property_ref is not None:
                moved_in = self._step(command, known, f"{key}/in", "MoveIn", AccountRef=ref,
                                      PropertyRef=model.new_property_ref, MovedOn=model.moved_on)
                details["move_in_reference"] = moved_in.reference
            bill = self._step(command, known, f"{key}/bill", "AccountRebill", AccountRef=ref)
        except Rejected as exc:
            # The Move Out stands: say so, so the officer finishes the move rather than starts it.
            raise Rejected(f"half done: Move Out {out.reference} was applied, then {exc.message}",
                           code=exc.code, field=exc.field, held=exc.held) from exc
        details["rebill_reference"] = bill.reference
        if bill.balance_pence is not None:
            details["balance_pence"] = bill.balance_pence
        message = ("moved out, moved in and rebilled" if model.new_property_ref
                   else "moved out of the area; final bill raised")
        return Outcome(key=key, status=OutcomeStatus.CONFIRMED, reference=out.reference,
                       message=message, details=details)

    def _single_person_discount(self, command: Command, model: SinglePersonDiscount,
                                known: dict[str, _Request]) -> Outcome:
        if model.adults_resident > 1:
            raise Rejected("single person discount needs exactly one adult resident",
                           code="NotEligible", field="adults_resident")
        answer = self._step(command, known, command.key, "DiscountApply",
                            AccountRef=model.account_ref, DiscountType="SPD",
                            EffectiveFrom=model.effective_from,
                            AdultsResident=model.adults_resident)
        return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=answer.reference,
                       message="single person discount applied")

    def _direct_debit(self, command: Command, model: DirectDebitSetup,
                      known: dict[str, _Request]) -> Outcome:
        answer = self._step(command, known, command.key, "DirectDebitCreate",
                            AccountRef=model.account_ref, AccountHolder=model.account_holder,
                            SortCode=model.sort_code, AccountNumber=model.account_number,
                            PaymentDay=model.payment_day)
        return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=answer.reference,
                       message="direct debit set up", details={"payment_day": model.payment_day})

    def _relief(self, command: Command, model: BusinessRatesRelief,
                known: dict[str, _Request]) -> Outcome:
        answer = self._step(command, known, command.key, "ReliefApply",
                            AccountRef=model.account_ref, ReliefType=model.relief_type,
                            EffectiveFrom=model.effective_from)
        return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=answer.reference,
                       message=f"{model.relief_type} relief applied")
