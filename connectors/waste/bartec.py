"""Waste back office in the style of Bartec Collective (SOAP): service requests for bulky-waste
collections and missed bins, status updates, premises and slot look-ups.

Protocol notes (see docs/connectors/waste.md):
- ``Authenticate`` returns a token that every other call carries in its body. The token is cached
  and renewed once when a call answers "invalid token"; the call is then retried once.
- Results carry an ``Errors`` block: ``Result`` 0 is success; anything else is a refusal of this
  record (``Rejected``), except an invalid token (renew) and a duplicate ``ExternalReference``
  (the request already exists: look it up and confirm it).
- The command key travels as ``ExternalReference``; before a create that may repeat an earlier
  attempt, the connector looks the key up with ``ServiceRequests_Get``.
- Times are the back office's local wall-clock time (``backoffice_timezone``), without an offset.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from connectors.base import Command, Connector, ConnectorConfig, Outcome, OutcomeStatus, Update
from connectors.errors import ConnectorError, PermanentError, Rejected, TransientError
from connectors.transports.soap import soap_call, soap_client
from connectors.waste.operations import OPERATIONS, BulkyCollection, MissedBin

log = logging.getLogger(__name__)

WSDL_PATH = Path(__file__).resolve().parent / "wsdl" / "CollectiveAPI.wsdl"
SYSTEM_ID = "waste_bartec"
CLOSED_STATUSES = frozenset({"COMPLETED", "CLOSED", "CANCELLED"})

#: Errors.Result codes with a meaning for the connector (the rest are refusals).
DUPLICATE_REFERENCE = 6
_FIELD_BY_RESULT = {3: "uprn", 4: "slot_date", 5: "collection_date", 9: "collection_date"}
_CODE_BY_RESULT = {3: "unknown-premises", 4: "slot-unavailable", 5: "collection-not-due",
                   6: "duplicate", 7: "unknown-service-type", 8: "not-found",
                   9: "no-scheduled-collection"}

T = TypeVar("T")

DEFAULT_SERVICE_TYPES: dict[str, str] = {
    "bulky": "BULKY COLLECTION",
    "missed_refuse": "MISSED REFUSE",
    "missed_recycling": "MISSED RECYCLING",
    "missed_garden": "MISSED GARDEN",
    "missed_food": "MISSED FOOD",
}


class BartecConfig(ConnectorConfig):
    """Connection settings: ``host`` is the SOAP endpoint URL, ``login``/``password`` the API user."""

    connection_fields: ClassVar[Mapping[str, str]] = {
        "host": "endpoint", "login": "username", "password": "password"}

    endpoint: str = Field(pattern=r"^https?://")
    username: str = Field(min_length=1)
    password: SecretStr
    backoffice_timezone: str = "Europe/London"
    """The zone of the back office's wall-clock times."""
    service_types: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SERVICE_TYPES))
    """Service type names in the back office, by ``bulky`` and ``missed_<bin type>``."""
    slot_window_days: int = Field(default=42, ge=1, le=365)
    """How far ahead ``waste.collection_slots`` looks."""

    @field_validator("backoffice_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value


class _InvalidToken(Exception):
    """The back office no longer accepts the cached token."""


class BartecConnector(Connector[BartecConfig]):
    """Service requests in a Bartec Collective-style waste system."""

    name = "bartec"
    domain = "waste"
    default_conn_id = "waste_bartec"
    Config = BartecConfig
    operations = OPERATIONS

    def __init__(self, config: BartecConfig) -> None:
        super().__init__(config)
        self._zone = ZoneInfo(config.backoffice_timezone)
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self._type_ids: dict[str, int] | None = None
        self._unsure: set[str] = set()
        """Keys whose create may have reached the back office: look before creating again."""

    # -- transport -----------------------------------------------------------------------------
    def _client(self) -> Any:
        return soap_client(WSDL_PATH, self.config.endpoint, timeout=self.config.timeout_seconds)

    def _authenticate(self) -> str:
        result = soap_call(self._client(), "Authenticate", user=self.config.username,
                           password=self.config.password.get_secret_value())
        code, _ = _errors(result)
        token = getattr(getattr(result, "Token", None), "TokenString", None)
        if code != 0 or not token:
            raise PermanentError("waste_bartec: Authenticate refused the credentials",
                                 code=f"auth-{code}")
        log.debug("waste_bartec: authenticated")
        return str(token)

    def _token_value(self, *, renew: bool = False) -> str:
        with self._token_lock:
            if renew or self._token is None:
                self._token = None
                self._token = self._authenticate()
            return self._token

    def _call(self, operation: str, **params: Any) -> Any:
        """Call ``operation`` with the token; renew the token once if it is refused."""
        try:
            return self._call_once(operation, self._token_value(), params)
        except _InvalidToken:
            log.info("waste_bartec: token refused by %s; renewing once", operation)
        try:
            return self._call_once(operation, self._token_value(renew=True), params)
        except _InvalidToken as exc:
            raise PermanentError(f"{operation}: a fresh token was refused",
                                 code="invalid-token") from exc

    def _call_once(self, operation: str, token: str, params: Mapping[str, Any]) -> Any:
        try:
            result = soap_call(self._client(), operation, token=token, **params)
        except (Rejected, PermanentError) as exc:  # a fault saying the token is bad
            if "token" in (exc.code or "").lower() or "token" in exc.message.lower():
                raise _InvalidToken() from exc
            raise
        code, message = _errors(result)
        if code != 0 and "token" in message.lower():
            raise _InvalidToken()
        return result

    def _read(self, operation: str, **params: Any) -> Any:
        """A read with retries for transient failures; a refusal raises ``Rejected``."""
        result = self.retrying()(self._call, operation, **params)
        _raise_for_errors(operation, result)
        return result

    def _retry(self, fn: Callable[..., T], *args: Any) -> T:
        return self.retrying()(fn, *args)

    # -- contract ------------------------------------------------------------------------------
    def check(self) -> None:
        self._retry(lambda: self._token_value(renew=True))
        types = self._service_type_ids(refresh=True)
        missing = sorted(k for k, v in self.config.service_types.items() if v.upper() not in types)
        if missing:
            raise PermanentError(f"waste_bartec: service types not in the back office: {missing}",
                                 code="config")

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        return self.submit_each(commands, self._apply)

    def fetch_updates(self, since: datetime) -> list[Update]:
        result = self._read("ServiceRequests_Updates_Get", LastUpdated=self._to_local(since))
        latest: dict[str, Any] = {}
        for change in result.ServiceRequest_Updates or []:
            latest[str(change.ServiceCode)] = change  # one per request: its latest change
        updates: list[Update] = []
        for code, change in latest.items():
            record = self._find(service_code=code)
            if record is None:
                continue
            stamp = record.RecordStamp
            author = (getattr(stamp, "ModifiedBy", None) or getattr(stamp, "AddedBy", None) or "")
            if author.strip().lower() == self.config.username.lower():
                continue  # the hub's own create or note
            status = str(record.ServiceStatus.Status).strip().upper()
            status_stamp = record.ServiceStatus.RecordStamp
            updates.append(Update(
                system=SYSTEM_ID, update_id=f"{code}@{change.DateChanged}", reference=code,
                status=status, changed_at=self._to_utc(str(change.DateChanged)),
                key=(record.ExternalReference or None),
                crm_status="closed" if status in CLOSED_STATUSES else "open",
                note=(getattr(status_stamp, "Comments", None) or None) if status_stamp else None))
        updates.sort(key=lambda u: (u.changed_at, u.update_id))
        log.info("waste_bartec: %d updates since the cursor", len(updates))
        return updates

    def lookup(self, kind: str, params: Mapping[str, Any]) -> Any:
        if kind == "waste.collection_slots":
            return self._slots(params)
        if kind == "waste.premises":
            return self._premises(params)
        return super().lookup(kind, params)

    def snapshot(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        found: dict[str, Mapping[str, Any]] = {}
        for key in keys:
            record = self._find(external_reference=key)
            if record is not None:
                status = str(record.ServiceStatus.Status).upper()
                found[key] = {"reference": str(record.ServiceCode), "status": status,
                              "crm_status": "closed" if status in CLOSED_STATUSES else "open"}
        return found

    # -- submit ----------------------------------------------------------------------------------
    def _apply(self, command: Command) -> Outcome:
        model = self.validate(command)
        if command.maybe_sent or command.key in self._unsure:
            existing = self._find(external_reference=command.key)
            if existing is not None:
                self._unsure.discard(command.key)
                return self._confirmed(command, str(existing.ServiceCode), existing=True)
        type_key = ("bulky" if isinstance(model, BulkyCollection)
                    else f"missed_{model.bin_type}")  # type: ignore[union-attr]
        params = {"ServiceTypeID": self._service_type_id(type_key), "UPRN": model.uprn,  # type: ignore[union-attr]
                  "ExternalReference": command.key, "Source": "CRM",
                  "DateRequested": self._to_local(datetime.now(timezone.utc)),
                  "ExtendedData": {"ExtendedDataField": _extended(model)}}
        contact = _contact(model)
        if contact:
            params["reporterContact"] = contact
        try:
            result = self._call("ServiceRequest_Create", **params)
        except TransientError:
            self._unsure.add(command.key)  # it may have been applied: look first next time
            raise
        code, message = _errors(result)
        if code == DUPLICATE_REFERENCE:
            existing = self._find(external_reference=command.key)
            reference = str(existing.ServiceCode) if existing is not None else result.ServiceCode
            if reference:
                return self._confirmed(command, str(reference), existing=True)
        if code != 0:
            raise _refusal(command.operation, code, message)
        self._unsure.discard(command.key)
        reference = str(result.ServiceCode)
        warnings = self._add_note(reference, _note_text(command, model))
        log.info("waste_bartec: %s created %s", command.operation, reference)
        return self._confirmed(command, reference, warnings=warnings)

    def _confirmed(self, command: Command, reference: str, *, existing: bool = False,
                   warnings: tuple[str, ...] = ()) -> Outcome:
        if existing:
            log.info("waste_bartec: %s already held as %s", command.operation, reference)
        return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=reference,
                       warnings=warnings, details={"service_request": reference})

    def _add_note(self, reference: str, text: str) -> tuple[str, ...]:
        """Add the note; a failure becomes a warning, never a failed create."""
        try:
            result = self._retry(lambda: self._call("ServiceRequest_Note_Create",
                                                    ServiceCode=reference, Note=text))
            _raise_for_errors("ServiceRequest_Note_Create", result)
        except ConnectorError as exc:
            log.warning("waste_bartec: note on %s not added (%s)", reference,
                        exc.code or type(exc).__name__)
            return (f"note not added to {reference}: {exc.code or type(exc).__name__}",)
        return ()

    # -- reads -----------------------------------------------------------------------------------
    def _find(self, *, external_reference: str | None = None,
              service_code: str | None = None) -> Any | None:
        params = ({"ExternalReference": external_reference} if external_reference
                  else {"ServiceCode": service_code})
        result = self._read("ServiceRequests_Get", **params)
        records = result.ServiceRequest or []
        return records[0] if records else None

    def _service_type_ids(self, *, refresh: bool = False) -> dict[str, int]:
        if self._type_ids is None or refresh:
            result = self._read("ServiceRequests_Types_Get")
            self._type_ids = {str(t.Name).strip().upper(): int(t.ID) for t in result.ServiceType or []}
        return self._type_ids

    def _service_type_id(self, type_key: str) -> int:
        name = self.config.service_types.get(type_key)
        if not name:
            raise PermanentError(f"waste_bartec: no service type configured for {type_key}",
                                 code="config")
        type_id = self._service_type_ids().get(name.upper())
        if type_id is None:
            type_id = self._service_type_ids(refresh=True).get(name.upper())
        if type_id is None:
            raise PermanentError(f"waste_bartec: service type for {type_key} not in the back office",
                                 code="config")
        return type_id

    def _slots(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        uprn = _required(params, "uprn")
        service = str(params.get("service") or "bulky")
        try:
            start = date.fromisoformat(str(params["from"])) if params.get("from") else None
        except ValueError as exc:
            raise Rejected("waste.collection_slots: field from is not a date",
                           code="invalid-field", field="from") from exc
        first = start or (datetime.now(self._zone).date() + timedelta(days=1))
        result = self._read("Jobs_Slots_Get", UPRN=uprn,
                            ServiceTypeID=self._service_type_id(service), DateFrom=first,
                            DateTo=first + timedelta(days=self.config.slot_window_days))
        return [{"date": s.SlotDate.isoformat(), "available": int(s.Available),
                 "round": s.Round, "service": service}
                for s in result.Slot or [] if int(s.Available) > 0]

    def _premises(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if params.get("uprn"):
            result = self._read("Premises_Get", UPRN=str(params["uprn"]).strip())
        elif params.get("postcode"):
            result = self._read("Premises_Get", PostCode=str(params["postcode"]).strip())
        else:
            raise Rejected("waste.premises: field uprn or postcode is required",
                           code="invalid-field", field="uprn")
        out = []
        for p in result.Premises or []:
            a = p.Address
            line1 = " ".join(x for x in (a.Address1, a.Address2, a.Street) if x) if a else ""
            out.append({"uprn": str(p.UPRN), "usrn": p.USRN,
                        "address": {"line1": line1, "locality": (a.Locality if a else None) or None,
                                    "town": a.Town if a else None,
                                    "postcode": a.PostCode if a else None}})
        return out

    # -- time --------------------------------------------------------------------------------------
    def _to_local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(self._zone).replace(tzinfo=None)

    def _to_utc(self, text: str) -> datetime:
        value = datetime.fromisoformat(text.strip())
        if value.tzinfo is None:
            value = value.replace(tzinfo=self._zone)
        return value.astimezone(timezone.utc)


# -- helpers ---------------------------------------------------------------------------------------
def _errors(result: Any) -> tuple[int, str]:
    block = getattr(result, "Errors", None)
    if block is None:
        return 0, ""
    return int(block.Result or 0), str(block.Message or "")


def _refusal(operation: str, code: int, message: str) -> Rejected:
    return Rejected(f"{operation}: {message[:200] or 'refused'}",
                    code=_CODE_BY_RESULT.get(code, f"bartec-{code}"),
                    field=_FIELD_BY_RESULT.get(code))


def _raise_for_errors(operation: str, result: Any) -> None:
    code, message = _errors(result)
    if code != 0:
        raise _refusal(operation, code, message)


def _required(params: Mapping[str, Any], name: str) -> str:
    value = str(params.get(name) or "").strip()
    if not value:
        raise Rejected(f"lookup: field {name} is required", code="invalid-field", field=name)
    return value


def _extended(model: BulkyCollection | MissedBin) -> list[dict[str, str]]:
    if isinstance(model, BulkyCollection):
        return ([{"FieldName": "SLOT_DATE", "FieldValue": model.slot_date.isoformat()}]
                + [{"FieldName": "ITEM", "FieldValue": f"{i.name} x{i.quantity}"} for i in model.items])
    return [{"FieldName": "COLLECTION_DATE", "FieldValue": model.collection_date.isoformat()},
            {"FieldName": "BIN_TYPE", "FieldValue": model.bin_type.upper()}]


def _contact(model: BulkyCollection | MissedBin) -> dict[str, str]:
    if not isinstance(model, BulkyCollection):
        return {}
    contact = {"Name": model.contact_name, "Telephone": model.contact_phone}
    return {k: v for k, v in contact.items() if v}


def _note_text(command: Command, model: BulkyCollection | MissedBin) -> str:
    if isinstance(model, BulkyCollection):
        items = ", ".join(f"{i.name} x{i.quantity}" for i in model.items)
        head = f"CRM case {command.case_ref}: bulky collection on {model.slot_date}: {items}."
    else:
        head = (f"CRM case {command.case_ref}: missed {model.bin_type} collection on "
                f"{model.collection_date}.")
    return f"{head} {model.note}" if model.note else head
