"""Waste back office in the style of Bartec Collective (SOAP): service requests for bulky-waste
collections and missed bins, their history, premises and slot look-ups.

Protocol notes (see docs/connectors/waste.md):
- ``Authenticate`` returns a token that every other call carries in its body. The token is cached
  and renewed once when a call answers "invalid token"; the call is then retried once.
- Results carry an ``Errors`` block: ``Result`` 0 is success; anything else is a refusal of this
  record (``Rejected``), except an invalid token (renew) and a duplicate ``ExternalReference``
  (the request already exists: look it up and confirm it). Where the result number is generic,
  the refusal is recognised from the message (``result_codes.py``).
- The command key travels as ``ExternalReference``; before a create that may repeat an earlier
  attempt, the connector looks the key up with ``ServiceRequests_Get``.
- Every note carries a ``NoteTypeID``, found by the configured name in
  ``ServiceRequests_Notes_Types_Get``. Extended-data field names come from configuration and are
  checked against ``System_ExtendedDataDefinitions_Get``, never hard-coded.
- Updates: ``ServiceRequests_Updates_Get`` says which requests changed; each one's
  ``ServiceRequests_History_Get`` gives every status it went through, with closing codes. That
  call's date filter is broken upstream, so the connector passes a very early date and filters.
- Answers are read tolerantly (``connectors.transports.xmlreader``): by local name, any
  namespace; what the hub does not use is never looked at; one bad entry in a list is set aside
  with a finding (an operations work item) and the rest is used.
- Times are the back office's local wall-clock time (``backoffice_timezone``), without an offset.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from connectors.base import (BackOfficeRecord, Command, Connector, ConnectorConfig, Outcome,
                             OutcomeStatus, Update)
from connectors.errors import (ConnectorError, PermanentError, Rejected, TransientError,
                               UnknownOutcomeError, UnreadableAnswer,
                               unknown_outcome_if_unreadable)
from connectors.transports.soap import soap_call, soap_client
from connectors.transports.xmlreader import Node
from connectors.waste.operations import OPERATIONS, BulkyCollection, MissedBin
from connectors.waste.result_codes import DUPLICATE_REFERENCE, INVALID_TOKEN, classify_result

log = logging.getLogger(__name__)

WSDL_PATH = Path(__file__).resolve().parent / "wsdl" / "CollectiveAPI.wsdl"

T = TypeVar("T")

DEFAULT_SERVICE_TYPES: dict[str, str] = {
    "bulky": "BULKY COLLECTION",
    "missed_refuse": "MISSED REFUSE",
    "missed_recycling": "MISSED RECYCLING",
    "missed_garden": "MISSED GARDEN",
    "missed_food": "MISSED FOOD",
}
#: The hub's extended-data values, by the field name the back office gives each one.
DEFAULT_EXTENDED_DATA_FIELDS: dict[str, str] = {
    "slot_date": "SLOT_DATE",
    "item": "ITEM",
    "collection_date": "COLLECTION_DATE",
    "bin_type": "BIN_TYPE",
}
#: ``ServiceRequests_History_Get``'s date filter is broken upstream: ask from long ago.
HISTORY_FROM = datetime(2000, 1, 1)
#: ``records()``: the largest page asked for, and the narrowest and widest DateRequested window
#: (the back office does not page ``ServiceRequests_Get``: the window is the page).
MAX_RECORDS_PAGE = 5000
MIN_RECORDS_WINDOW = timedelta(minutes=1)
MAX_RECORDS_WINDOW = timedelta(days=31)


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
    note_type: str = Field(default="CRM NOTE", min_length=1, max_length=100)
    """The name of the note type every note carries (``ServiceRequests_Notes_Types_Get``)."""
    extended_data_fields: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_EXTENDED_DATA_FIELDS))
    """Back-office extended-data field names, by ``slot_date``, ``item``, ``collection_date``,
    ``bin_type``; checked against ``System_ExtendedDataDefinitions_Get``."""
    closed_statuses: tuple[str, ...] = ("COMPLETED", "CLOSED", "CANCELLED")
    """Status words after which the CRM case is closed."""
    records_horizon_days: int = Field(default=730, ge=1, le=3650)
    """How far back ``records()`` reads (by DateRequested): older requests are not reconciled."""
    concurrent_sends: int = Field(default=4, ge=1, le=16)
    """Commands for different premises sent at once (one keep-alive connection each)."""

    @field_validator("backoffice_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("extended_data_fields")
    @classmethod
    def _all_fields_named(cls, value: dict[str, str]) -> dict[str, str]:
        missing = sorted(set(DEFAULT_EXTENDED_DATA_FIELDS) - set(value))
        if missing:
            raise ValueError(f"no back-office field name for {missing}")
        return value


def _premises(command: Command) -> list[str]:
    """The premises a command is about: commands for one UPRN are sent in order."""
    uprn = command.payload.get("uprn")
    return [f"uprn:{str(uprn).strip()}"] if uprn else []


class _InvalidToken(Exception):
    """The back office no longer accepts the cached token."""


class BartecConnector(Connector[BartecConfig]):
    """Service requests in a Bartec Collective-style waste system."""

    system = "waste_bartec"
    Config = BartecConfig
    operations = OPERATIONS
    lookup_kinds = ("waste.collection_slots", "waste.premises", "waste.statuses")

    def __init__(self, config: BartecConfig) -> None:
        super().__init__(config)
        self._zone = ZoneInfo(config.backoffice_timezone)
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self._types: list[tuple[int, str, int | None]] | None = None
        self._note_type_id: int | None = None
        self._definitions: dict[int, frozenset[str]] | None = None
        self._unsure: set[str] = set()
        """Keys whose create may have reached the back office: look before creating again."""

    # -- transport -----------------------------------------------------------------------------
    def _client(self) -> Any:
        return soap_client(WSDL_PATH, self.config.endpoint, timeout=self.config.timeout_seconds,
                           max_answer_bytes=self.config.max_answer_bytes,
                           max_answer_depth=self.config.max_answer_depth)

    def _authenticate(self) -> str:
        result = _result(soap_call(self._client(), "Authenticate", user=self.config.username,
                                   password=self.config.password.get_secret_value()))
        code, _ = _errors(result)
        token_node = result.child("Token")
        token = token_node.text("TokenString") if token_node is not None else None
        if code != 0 or not token:
            raise PermanentError(f"{self.system_id()}: Authenticate refused the credentials",
                                 code=f"auth-{code}")
        log.debug("%s: authenticated", self.system_id())
        return token

    def _token_value(self, *, renew: bool = False) -> str:
        with self._token_lock:
            if renew or self._token is None:
                self._token = None
                self._token = self._authenticate()
            return self._token

    def _call(self, operation: str, *, write: bool = False, **params: Any) -> Node:
        """Call ``operation`` with the token; renew the token once if it is refused. Returns the
        operation's result element."""
        try:
            return self._call_once(operation, self._token_value(), params, write)
        except _InvalidToken:
            log.info("%s: token refused by %s; renewing once", self.system_id(), operation)
        try:
            return self._call_once(operation, self._token_value(renew=True), params, write)
        except _InvalidToken as exc:
            raise PermanentError(f"{operation}: a fresh token was refused",
                                 code="invalid-token") from exc

    def _call_once(self, operation: str, token: str, params: Mapping[str, Any],
                   write: bool) -> Node:
        try:
            answer = soap_call(self._client(), operation, write=write, token=token, **params)
        except (Rejected, PermanentError) as exc:  # a fault saying the token is bad
            if "token" in (exc.code or "").lower() or "token" in exc.message.lower():
                raise _InvalidToken() from exc
            raise
        if write:
            with unknown_outcome_if_unreadable(operation):
                result = _result(answer)
                code, message = _errors(result)
        else:
            result = _result(answer)
            code, message = _errors(result)
        if code == INVALID_TOKEN or (code != 0 and "token" in message.lower()):
            raise _InvalidToken()
        return result

    def _read(self, operation: str, **params: Any) -> Node:
        """A read with retries for transient failures; a refusal raises ``Rejected``."""
        result = self.retrying()(self._call, operation, **params)
        _raise_for_errors(operation, result)
        return result

    def _retry(self, fn: Callable[..., T], *args: Any) -> T:
        return self.retrying()(fn, *args)

    # -- contract ------------------------------------------------------------------------------
    def check(self) -> None:
        self._retry(lambda: self._token_value(renew=True))
        self._service_types(refresh=True)
        for type_key in self.config.service_types:
            self._service_type(type_key)
        self._note_type(refresh=True)
        self._definitions = None   # read the definitions afresh (only if a type has one)
        for type_key in self.config.service_types:
            self._check_extended_fields(type_key)

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        return self.submit_each(commands, self._apply, lanes=self.config.concurrent_sends,
                                records=_premises)

    def fetch_updates(self, since: datetime) -> list[Update]:
        since_utc = _aware(since)
        result = self._read("ServiceRequests_Updates_Get", LastUpdated=self._to_local(since))
        codes: list[str] = []
        for entry in result.children("ServiceRequest_Updates"):
            try:
                code = entry.reference("ServiceCode")
            except UnreadableAnswer as exc:
                self._set_aside("ServiceRequests_Updates_Get", entry.path, exc)
                continue
            if code not in codes:
                codes.append(code)
        updates: list[Update] = []
        for code in codes:
            updates += self._history(code, since_utc)
        updates.sort(key=lambda u: (u.changed_at, u.update_id))
        log.info("%s: %d updates from %d changed requests", self.system_id(), len(updates),
                 len(codes))
        return updates

    def lookup(self, kind: str, params: Mapping[str, Any]) -> Any:
        if kind == "waste.collection_slots":
            return self._slots(params)
        if kind == "waste.premises":
            return self._premises(params)
        if kind == "waste.statuses":
            return self._statuses(params)
        return super().lookup(kind, params)

    def snapshot(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        found: dict[str, Mapping[str, Any]] = {}
        for key in keys:
            try:
                record = self._find(external_reference=key)
                if record is None:
                    continue
                reference = record.reference("ServiceCode")
                status = _status_word(record)
            except UnreadableAnswer as exc:
                self._set_aside("ServiceRequests_Get", f"ExternalReference {key}", exc)
                continue
            found[key] = {"reference": reference, "status": status,
                          "crm_status": self._crm_status(status)}
        return found

    def records(self, *, since: datetime | None = None,
                page_size: int = 500) -> Iterator[BackOfficeRecord]:
        """Every service request raised in the last ``records_horizon_days``, read with
        ``ServiceRequests_Get`` by DateRequested windows (the back office's own paging), oldest
        window first. A window answering more than ``page_size`` requests (or more than
        ``max_answer_bytes``) is asked again in halves; a sparse one widens the next, so each call
        brings about a page. Windows step in the back office's local wall-clock time, so a
        request in a repeated autumn hour is read once. ``since``: only requests changed (added
        or modified) at or after it. An entry that cannot be read is set aside."""
        size = self.page_size_for(page_size, maximum=MAX_RECORDS_PAGE)
        end = self._to_local(datetime.now(timezone.utc)) + timedelta(seconds=1)
        cursor = end - timedelta(days=self.config.records_horizon_days)
        window = timedelta(days=1)
        since_utc = _aware(since) if since is not None else None
        while cursor < end:
            upper = min(cursor + window, end)
            try:
                result = self._read("ServiceRequests_Get", DateRequested={
                    "MinimumDate": cursor, "MaximumDate": upper})
                entries = result.children("ServiceRequest")
            except UnreadableAnswer as exc:
                if exc.code != "answer-too-large" or window <= MIN_RECORDS_WINDOW:
                    raise
                entries = None
            if entries is None or (len(entries) > size and window > MIN_RECORDS_WINDOW):
                window = max(window / 2, MIN_RECORDS_WINDOW)
                continue
            for entry in entries:
                record = self._listed(entry)
                if record is not None and (since_utc is None or record.changed_at is None
                                           or record.changed_at >= since_utc):
                    yield record
            cursor = upper
            if len(entries) * 4 < size:
                window = min(window * 2, MAX_RECORDS_WINDOW)

    def _listed(self, entry: Node) -> BackOfficeRecord | None:
        try:
            code = entry.reference("ServiceCode")
            status = _status_word(entry)
            premises = entry.child("Premises")
            uprn = premises.text("UPRN") if premises is not None else None
            service = entry.child("ServiceType")
            operation, fields = self._type_fields(service)
            stamp = entry.child("RecordStamp")
            changed = (stamp.datetime("DateModified") or stamp.datetime("DateAdded")
                       if stamp is not None else None)
            key = entry.text("ExternalReference")
        except UnreadableAnswer as exc:
            self._set_aside("ServiceRequests_Get", entry.path, exc)
            return None
        if uprn is not None:
            fields["uprn"] = uprn
        return BackOfficeRecord(reference=code, key=key if key and len(key) <= 200 else None,
                                status=status, fields=fields, crm_status=self._crm_status(status),
                                changed_at=self._to_utc(changed) if changed else None,
                                operation=operation)

    def _type_fields(self, service: Node | None) -> tuple[str | None, dict[str, Any]]:
        """The operation a listed request's service type stands for and the payload fields it
        implies (``bin_type`` of a missed bin), by the configured service types."""
        if service is None:
            return None, {}
        type_id, name = service.text("ID"), (service.text("Name") or "").upper()
        for type_key, wanted in self.config.service_types.items():
            wanted = wanted.strip().upper()
            if (wanted.isdigit() and wanted == type_id) or (not wanted.isdigit() and wanted == name):
                if type_key == "bulky":
                    return "waste.bulky_collection", {}
                if type_key.startswith("missed_"):
                    return "waste.missed_bin", {"bin_type": type_key.removeprefix("missed_")}
        return None, {}

    # -- submit ----------------------------------------------------------------------------------
    def _apply(self, command: Command) -> Outcome:
        model = self.validate(command)
        if command.maybe_sent or command.key in self._unsure:
            existing = self._existing_reference(command.key)
            if existing is not None:
                self._unsure.discard(command.key)
                return self._confirmed(command, existing, existing=True)
        type_key = ("bulky" if isinstance(model, BulkyCollection)
                    else f"missed_{model.bin_type}")  # type: ignore[union-attr]
        type_id = self._service_type_id(type_key)
        params = {"ServiceTypeID": type_id, "UPRN": model.uprn,  # type: ignore[union-attr]
                  "ExternalReference": command.key, "Source": "CRM",
                  "DateRequested": self._to_local(datetime.now(timezone.utc)),
                  "ExtendedData": {"ExtendedDataField": self._extended(type_key, model)}}
        contact = _contact(model)
        if contact:
            params["reporterContact"] = contact
        try:
            result = self._call("ServiceRequest_Create", write=True, **params)
            code, message = _errors(result)
            if code == DUPLICATE_REFERENCE or classify_result(code, message)[0] == "duplicate":
                reference = self._existing_reference(command.key)
                if reference is None:
                    with unknown_outcome_if_unreadable("ServiceRequest_Create"):
                        reference = result.reference("ServiceCode")
                return self._confirmed(command, reference, existing=True)
            if code != 0:
                raise _refusal(command.operation, code, message)
            with unknown_outcome_if_unreadable("ServiceRequest_Create"):
                reference = result.reference("ServiceCode")
        except TransientError:
            self._unsure.add(command.key)  # it may have been applied: look first next time
            raise
        self._unsure.discard(command.key)
        warnings = self._add_note(reference, _note_text(command, model))
        log.info("%s: %s created %s", self.system_id(), command.operation, reference)
        return self._confirmed(command, reference, warnings=warnings)

    def _confirmed(self, command: Command, reference: str, *, existing: bool = False,
                   warnings: tuple[str, ...] = ()) -> Outcome:
        if existing:
            log.info("%s: %s already held as %s", self.system_id(), command.operation, reference)
        return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=reference,
                       warnings=warnings, details={"service_request": reference})

    def _existing_reference(self, key: str) -> str | None:
        """The service code the back office holds for ``key``; an unreadable one is not a yes."""
        record = self._find(external_reference=key)
        if record is None:
            return None
        try:
            return record.reference("ServiceCode")
        except UnreadableAnswer as exc:
            raise UnknownOutcomeError(f"{exc.message}; whether the request exists is unknown",
                                      code=exc.code, field=exc.field) from exc

    def _add_note(self, reference: str, text: str) -> tuple[str, ...]:
        """Add the note; a failure becomes a warning, never a failed create."""
        try:
            note_type = self._note_type()
            result = self._retry(lambda: self._call("ServiceRequest_Note_Create", write=True,
                                                    ServiceCode=reference, NoteTypeID=note_type,
                                                    Note=text))
            _raise_for_errors("ServiceRequest_Note_Create", result)
        except ConnectorError as exc:
            log.warning("%s: note on %s not added (%s)", self.system_id(), reference,
                        exc.code or type(exc).__name__)
            return (f"note not added to {reference}: {exc.code or type(exc).__name__}",)
        return ()

    def _extended(self, type_key: str, model: BulkyCollection | MissedBin) -> list[dict[str, str]]:
        names = self._check_extended_fields(type_key)
        if isinstance(model, BulkyCollection):
            return ([{"FieldName": names["slot_date"], "FieldValue": model.slot_date.isoformat()}]
                    + [{"FieldName": names["item"], "FieldValue": f"{i.name} x{i.quantity}"}
                       for i in model.items])
        return [{"FieldName": names["collection_date"],
                 "FieldValue": model.collection_date.isoformat()},
                {"FieldName": names["bin_type"], "FieldValue": model.bin_type.upper()}]

    # -- reference data --------------------------------------------------------------------------
    def _service_types(self, *, refresh: bool = False) -> list[tuple[int, str, int | None]]:
        """The service catalogue: (ID, upper-case name, ExtendedDataRecordDefinitionID)."""
        if self._types is None or refresh:
            result = self._read("ServiceRequests_Types_Get")
            types: list[tuple[int, str, int | None]] = []
            for entry in result.children("ServiceType"):
                try:
                    types.append((entry.integer("ID", required=True),  # type: ignore[arg-type]
                                  entry.required("Name").upper(),
                                  entry.integer("ExtendedDataRecordDefinitionID")))
                except UnreadableAnswer as exc:
                    self._set_aside("ServiceRequests_Types_Get", entry.path, exc)
            self._types = types
        return self._types

    def _service_type(self, type_key: str) -> tuple[int, int | None]:
        """(ID, definition ID) of the configured service type: by name, or by ID when the setting
        is a number (to choose between types the back office gives the same name)."""
        wanted = (self.config.service_types.get(type_key) or "").strip().upper()
        field = f"service_types.{type_key}"
        if not wanted:
            raise PermanentError(f"{self.system_id()}: no service type configured for {type_key}",
                                 code="config", field=field)
        for refresh in (False, True):
            found = {(i, d) for i, n, d in self._service_types(refresh=refresh)
                     if (str(i) == wanted if wanted.isdigit() else n == wanted)}
            if len({i for i, _ in found}) > 1:
                raise PermanentError(f"{self.system_id()}: the back office has several service "
                                     f"types named as configured for {type_key}; configure its ID",
                                     code="config", field=field)
            if found:
                return next(iter(found))
        raise PermanentError(f"{self.system_id()}: service type for {type_key} not in the back "
                             "office",
                             code="config", field=field)

    def _service_type_id(self, type_key: str) -> int:
        return self._service_type(type_key)[0]

    def _note_type(self, *, refresh: bool = False) -> int:
        if self._note_type_id is None or refresh:
            result = self._read("ServiceRequests_Notes_Types_Get")
            wanted = self.config.note_type.strip().upper()
            self._note_type_id = None
            for entry in result.children("NoteType"):
                try:
                    names = {(entry.text(n) or "").upper() for n in ("Description", "Name")}
                    if wanted in names:
                        self._note_type_id = entry.integer("ID", required=True)
                        break
                except UnreadableAnswer as exc:
                    self._set_aside("ServiceRequests_Notes_Types_Get", entry.path, exc)
            if self._note_type_id is None:
                raise PermanentError(f"{self.system_id()}: the configured note type is not in the "
                                     "back office", code="config", field="note_type")
        return self._note_type_id

    def _definitions_by_id(self, *, refresh: bool = False) -> dict[int, frozenset[str]]:
        if self._definitions is None or refresh:
            result = self._read("System_ExtendedDataDefinitions_Get")
            definitions: dict[int, frozenset[str]] = {}
            for entry in result.children("ExtendedDataDefinition"):
                try:
                    definition_id = entry.integer("ID", required=True)
                    fields = entry.child("Fields")
                    names = frozenset(
                        f.required("Name").upper()
                        for f in (fields.children("Field") if fields is not None else []))
                except UnreadableAnswer as exc:
                    self._set_aside("System_ExtendedDataDefinitions_Get", entry.path, exc)
                    continue
                definitions[definition_id] = names  # type: ignore[index]
            self._definitions = definitions
        return self._definitions

    def _check_extended_fields(self, type_key: str, *, refresh: bool = False) -> dict[str, str]:
        """The configured field names for a service type, each checked against its definition."""
        names = self.config.extended_data_fields
        _, definition_id = self._service_type(type_key)
        if not definition_id:  # no definition (0 or nil): the back office takes any field
            return names
        known = self._definitions_by_id(refresh=refresh).get(definition_id)
        if known is None:
            known = self._definitions_by_id(refresh=True).get(definition_id)
        if known is None:
            raise PermanentError(f"{self.system_id()}: extended data definition of {type_key} is "
                                 "not in the back office", code="config", field=f"service_types.{type_key}")
        wanted = ("slot_date", "item") if type_key == "bulky" else ("collection_date", "bin_type")
        for key in wanted:
            if names[key].upper() not in known:
                raise PermanentError(f"{self.system_id()}: extended data field for {key} is not in "
                                     f"the definition of {type_key}", code="config",
                                     field=f"extended_data_fields.{key}")
        return names

    # -- reads -----------------------------------------------------------------------------------
    def _find(self, *, external_reference: str | None = None,
              service_code: str | None = None) -> Node | None:
        params = ({"ExternalReference": external_reference} if external_reference
                  else {"ServiceCode": service_code})
        result = self._read("ServiceRequests_Get", **params)
        records = result.children("ServiceRequest")
        return records[0] if records else None

    def _history(self, code: str, since: datetime) -> list[Update]:
        """Every status change of ``code`` after ``since`` by someone other than the hub."""
        result = self._read("ServiceRequests_History_Get", ServiceCode=code, Date=HISTORY_FROM)
        entries = result.children("ServiceRequest_History")
        updates: list[Update] = []
        key: str | None = None
        key_read = False
        for entry in entries:
            try:
                status = _status_word(entry)
                stamp = entry.child("RecordStamp")
                when = stamp.datetime("DateAdded", required=True) if stamp is not None else None
                if when is None:
                    raise entry.missing("RecordStamp")
                changed_at = self._to_utc(when)
                if changed_at <= since:
                    continue
                author = (stamp.text("AddedBy") or "") if stamp is not None else ""
                if author.strip().lower() == self.config.username.lower():
                    continue  # the hub's own create
                history_id = entry.text("ID")
                closing = entry.text("ClosingCode")
                comments = stamp.text("Comments") if stamp is not None else None
            except UnreadableAnswer as exc:
                self._set_aside("ServiceRequests_History_Get", f"{code} {entry.path}", exc)
                continue
            if not key_read:
                key, key_read = self._key_of(code), True
            note = "; ".join(filter(None, [f"closing code {closing}" if closing else None,
                                           comments]))
            updates.append(Update(
                system=self.system_id(),
                update_id=(f"{code}#{history_id}" if history_id
                           else f"{code}@{changed_at.isoformat()}:{status}")[:160],
                reference=code, status=status, changed_at=changed_at, key=key,
                crm_status=self._crm_status(status), note=note or None))
        return updates

    def _key_of(self, code: str) -> str | None:
        """The ExternalReference (our command key) of a service request, when it has one."""
        try:
            record = self._find(service_code=code)
        except Rejected:
            return None
        if record is None:
            return None
        reference = record.text("ExternalReference")
        return reference if reference and len(reference) <= 64 else None

    def _slots(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        uprn = _required(params, "uprn")
        service = str(params.get("service") or "bulky")
        try:
            start = date.fromisoformat(str(params["from"])) if params.get("from") else None
        except ValueError:
            start = date.min
        if start == date.min:
            raise Rejected("waste.collection_slots: field from is not a date",
                           code="invalid-field", field="from")
        first = start or (datetime.now(self._zone).date() + timedelta(days=1))
        result = self._read("Jobs_Slots_Get", UPRN=uprn,
                            ServiceTypeID=self._service_type_id(service), DateFrom=first,
                            DateTo=first + timedelta(days=self.config.slot_window_days))
        slots = []
        for entry in result.children("Slot"):
            try:
                slot_date = entry.date("SlotDate", required=True)
                available = entry.integer("Available", required=True)
                round_name = entry.text("Round")
            except UnreadableAnswer as exc:
                self._set_aside("Jobs_Slots_Get", entry.path, exc)
                continue
            if available and available > 0:
                slots.append({"date": slot_date.isoformat(), "available": available,  # type: ignore[union-attr]
                              "round": round_name, "service": service})
        return slots

    def _premises(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if params.get("uprn"):
            result = self._read("Premises_Get", UPRN=str(params["uprn"]).strip())
        elif params.get("postcode"):
            result = self._read("Premises_Get", PostCode=str(params["postcode"]).strip())
        else:
            raise Rejected("waste.premises: field uprn or postcode is required",
                           code="invalid-field", field="uprn")
        out = []
        for entry in result.children("Premises"):
            try:
                uprn = entry.reference("UPRN")
                usrn = entry.text("USRN")
                a = entry.child("Address")
                parts = [a.text(n) for n in ("Address1", "Address2", "Street")] if a else []
                address = {"line1": " ".join(p for p in parts if p),
                           "locality": a.text("Locality") if a else None,
                           "town": a.text("Town") if a else None,
                           "postcode": a.text("PostCode") if a else None}
            except UnreadableAnswer as exc:
                self._set_aside("Premises_Get", entry.path, exc)
                continue
            out.append({"uprn": uprn, "usrn": usrn, "address": address})
        return out

    def _statuses(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The status catalogue (``ServiceRequests_Statuses_Get``), optionally for one service
        type (``{"service": "bulky"}``): ``[{"id", "status", "sequence", "service_type_id",
        "closes_case"}]``."""
        service = params.get("service")
        extra = {"ServiceTypeID": self._service_type_id(str(service))} if service else {}
        result = self._read("ServiceRequests_Statuses_Get", **extra)
        statuses = []
        for entry in result.children("ServiceStatus"):
            try:
                word = entry.status("Status")
                statuses.append({"id": entry.integer("ID", required=True), "status": word,
                                 "sequence": entry.integer("SequenceNumber"),
                                 "service_type_id": entry.integer("ServiceTypeID"),
                                 "closes_case": self._crm_status(word) == "closed"})
            except UnreadableAnswer as exc:
                self._set_aside("ServiceRequests_Statuses_Get", entry.path, exc)
        return statuses

    # -- helpers ---------------------------------------------------------------------------------
    def _set_aside(self, operation: str, entry: str, exc: UnreadableAnswer) -> None:
        self.set_aside(operation=operation, entry=entry, field=exc.field, reason=exc.message,
                       code=exc.code)

    def _crm_status(self, status: str) -> str:
        return "closed" if status in {s.upper() for s in self.config.closed_statuses} else "open"

    def _to_local(self, moment: datetime) -> datetime:
        return _aware(moment).astimezone(self._zone).replace(tzinfo=None)

    def _to_utc(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=self._zone)
        return value.astimezone(timezone.utc)


# -- helpers ---------------------------------------------------------------------------------------
def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _result(answer: Node) -> Node:
    """The ``<Operation>Result`` element of a response (or the response itself when it has none:
    every part of a result is optional in the vendor's schema)."""
    for child in answer.element:
        if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1].endswith("Result"):
            name = child.tag.rsplit("}", 1)[-1]
            return Node(child, f"{answer.path}/{name}", answer.what)
    return answer


def _errors(result: Node) -> tuple[int, str]:
    """(Result, Message) of the ``Errors`` block; no block, or an empty one, is success."""
    block = result.child("Errors")
    if block is None:
        return 0, ""
    message_node = block.child("Message")
    message = (" ".join("".join(message_node.element.itertext()).split())
               if message_node is not None else "")
    code = block.integer("Result")
    if code is None:
        return (1 if message else 0), message
    return code, message


def _status_word(record: Node) -> str:
    """The status word of a service request or history entry (``ServiceStatus/Status``)."""
    status = record.child("ServiceStatus")
    if status is None:
        raise record.missing("ServiceStatus")
    return status.status("Status")


def _refusal(operation: str, code: int, message: str) -> Rejected:
    name, field = classify_result(code, message)
    return Rejected(f"{operation}: {message[:200] or 'refused'}", code=name, field=field)


def _raise_for_errors(operation: str, result: Node) -> None:
    code, message = _errors(result)
    if code != 0:
        raise _refusal(operation, code, message)


def _required(params: Mapping[str, Any], name: str) -> str:
    value = str(params.get(name) or "").strip()
    if not value:
        raise Rejected(f"lookup: field {name} is required", code="invalid-field", field=name)
    return value


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
