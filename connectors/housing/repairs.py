"""Housing repairs over REST (docs/connectors/housing.md): repair jobs with the command key as
client reference, their status changes, appointment slots and cancellation.

Read tolerantly (docs/connectors.md, "Reading answers"): fields the hub does not use are never
looked at; an event, slot or job in a list that lacks a value the hub needs (or holds markup where
a reference or status word should be) is set aside with a finding naming the entry and the field,
and the rest of the list goes on; a created job without a readable id is an unknown outcome,
never a confirmation."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast

import httpx
from pydantic import Field

from connectors.base import BackOfficeRecord, Command, Connector, Outcome, OutcomeStatus, Update
from connectors.errors import Rejected, UnknownOutcomeError
from connectors.fields import aware_time, is_reference, is_status_word
from connectors.housing.operations import OPERATIONS, CancelRepair, RepairRequest
from connectors.transports.rest import (HttpRejected, RestConfig, cursor_pages, next_link_pages,
                                        page_number_pages)

log = logging.getLogger(__name__)
JOBS, EVENTS, SLOTS = "/api/v2/jobs", "/api/v2/job-events", "/api/v2/appointment-slots"
CLOSED = frozenset({"COMPLETED", "CANCELLED"})
SLOTS_LOOKUP = "housing.appointment_slots"
#: The API's largest job-list page (``page_size``).
MAX_JOBS_PAGE = 100
#: The most job-list pages one records() read follows (100 a page: ten million jobs).
MAX_JOBS_PAGES = 100_000
_TRADE_CODE = re.compile(r"[A-Z][A-Z_]{0,39}")
#: The API's request fields, as its refusals name them -> this system's payload fields.
FIELDS = {"location.property_reference": "uprn", "property_reference": "uprn",
          "location.room": "room", "location.detail": "location_detail",
          "appointment.slot_id": "appointment_slot_id", "contact.name": "contact_name",
          "contact.phone": "contact_phone"}


class RepairsConfig(RestConfig):
    """``host`` is the service root, ``login``/``password`` the OAuth2 client id and secret."""

    scope: str | None = "repairs"
    slot_window_days: int = Field(default=28, ge=1, le=365)


class RepairsConnector(Connector[RepairsConfig]):
    """Repair jobs in a housing repairs system with a JSON API."""

    system = "housing_repairs"
    Config = RepairsConfig
    operations = OPERATIONS
    lookup_kinds = (SLOTS_LOOKUP,)

    def __init__(self, config: RepairsConfig, *, transport: httpx.BaseTransport | None = None):
        super().__init__(config)
        self.http = config.client(self.system_id(), field_names=FIELDS, transport=transport)

    def check(self) -> None:
        self.retrying()(self.http.get, "/api/v2/trades")

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        return self.submit_each(commands, self._apply)

    def fetch_updates(self, since: datetime) -> list[Update]:
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        query = {"changed_after": since.isoformat(timespec="microseconds"), "limit": 500}
        events = self.retrying()(lambda: list(cursor_pages(self.http, EVENTS, params=query)))
        updates = [u for u in (self._update(n, e, since) for n, e in enumerate(events))
                   if u is not None]
        return sorted(updates, key=lambda u: (u.changed_at, u.update_id))

    def lookup(self, kind: str, params: Mapping[str, Any]) -> Any:
        if kind != SLOTS_LOOKUP:
            return super().lookup(kind, params)
        try:
            first = date.fromisoformat(str(params.get("from") or date.today() + timedelta(days=1)))
        except ValueError as exc:
            raise Rejected(f"{kind}: field from is not a date", code="invalid-field",
                           field="from") from exc
        query = {"property_reference": _param(params, "uprn", re.compile(r"\d{1,12}")),
                 "trade": _param(params, "trade", _TRADE_CODE, upper=True),
                 "from": first.isoformat(),
                 "to": (first + timedelta(days=self.config.slot_window_days)).isoformat()}
        slots = self.retrying()(lambda: list(page_number_pages(self.http, SLOTS, params=query)))
        return [slot for slot in (self._slot(n, s) for n, s in enumerate(slots))
                if slot is not None]

    def snapshot(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        found: dict[str, Mapping[str, Any]] = {}
        for key in keys:
            job = self._find(key)
            status = self._job_status(job) if job is not None else None
            if job is not None and status is not None:
                found[key] = {"reference": job["id"], "status": status,
                              "crm_status": "closed" if status in CLOSED else "open"}
        return found

    def records(self, *, since: datetime | None = None,
                page_size: int = 100) -> Iterator[BackOfficeRecord]:
        """Every job carrying a client reference, from the job list (``GET /api/v2/jobs``,
        next-link pages of ``page_size``, capped at 100), updated at or after ``since`` when given.
        A job the hub cannot read (no id, no status word) is set aside and the read goes on.
        ``changed_at`` is the job's ``status_changed_at`` (when its status last changed), never
        ``updated_at`` (which any field change moves): reconciliation takes it as the time of the
        status. A job without a readable one (an older back office) has none, so its status is
        never judged newer than the hub's write-back."""
        size = self.page_size_for(page_size, maximum=MAX_JOBS_PAGE)
        params: dict[str, Any] = {"page_size": size}
        if since is not None:
            aware = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
            params["updated_since"] = aware.isoformat(timespec="microseconds")
        listed = next_link_pages(self.http, JOBS, params=params, max_pages=MAX_JOBS_PAGES)
        for position, job in enumerate(listed):
            status = self._job_status(job) if self._readable_job(position, job) else None
            if status is None:
                continue
            key = _text(job, "client_reference")
            yield BackOfficeRecord(
                reference=job["id"].strip(), key=key if is_reference(key) else None,
                status=status, fields=_job_fields(job),
                crm_status="closed" if status in CLOSED else "open",
                changed_at=aware_time(job.get("status_changed_at")),
                operation="housing.repair_request")

    # -- submit ---------------------------------------------------------------------------------
    def _apply(self, command: Command) -> Outcome:
        model = self.validate(command)
        if isinstance(model, CancelRepair):
            return self._cancel(command, model)
        body = _job_body(command, cast(RepairRequest, model))
        return self.create_once(command, lambda: self._found(command),
                                lambda: self._create(command, body))

    def _create(self, command: Command, body: dict[str, Any]) -> Outcome:
        try:
            job = self.http.post(JOBS, json=body).json_object()
        except HttpRejected as exc:
            if exc.vendor_code == "duplicate_client_reference" and (found := self._found(command)):
                return found
            raise
        if not is_reference(job.get("id")):
            raise UnknownOutcomeError(f"{self.system_id()}: created job has no readable id",
                                      code="contract", field="id")
        log.info("%s: %s created %s", self.system_id(), command.operation, job["id"])
        return _confirmed(command, job)

    def _cancel(self, command: Command, model: CancelRepair) -> Outcome:
        listed = next_link_pages(self.http, JOBS, params={"source_reference": command.case_ref[:40]})
        jobs = [j for n, j in enumerate(listed) if self._readable_job(n, j)]
        if not jobs:
            raise Rejected("housing.cancel_repair: no repair job for this case", code="no_job")
        for job in jobs:
            if job.get("status") != "CANCELLED":
                self.http.post(f"{JOBS}/{{job_id}}/cancel", path={"job_id": job["id"]},
                               json={"reason": model.reason} if model.reason else {})
        return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=jobs[0]["id"],
                       details={"cancelled": ", ".join(j["id"] for j in jobs)})

    # -- reads ---------------------------------------------------------------------------------
    def _found(self, command: Command) -> Outcome | None:
        job = self._find(command.key)
        return _confirmed(command, job) if job is not None else None

    def _find(self, key: str) -> dict[str, Any] | None:
        listed = next_link_pages(self.http, JOBS, params={"client_reference": key})
        for n, job in enumerate(listed):
            if (isinstance(job, dict) and job.get("client_reference") == key
                    and self._readable_job(n, job)):
                return job
        return None

    def _job_status(self, job: Mapping[str, Any]) -> str | None:
        """A listed job's status word, upper-case; None (and the job set aside) when unreadable."""
        status = _text(job, "status")
        if not is_status_word(status):
            self._set_aside(f"GET {JOBS}", f"job {str(job['id']).strip()}", "status",
                            "no readable status word")
            return None
        return cast(str, status).upper()

    def _readable_job(self, position: int, job: Any) -> bool:
        """True for a listed job with a readable id; any other entry is set aside."""
        if isinstance(job, dict) and is_reference(job.get("id")):
            return True
        field = "id" if isinstance(job, dict) else None
        self._set_aside(f"GET {JOBS}", f"jobs[{position}]", field,
                        "no readable job id" if field else "not an object")
        return False

    def _update(self, position: int, event: Any, since: datetime) -> Update | None:
        """One status change; None for other events and the hub's own; an event the hub cannot
        read is set aside (a finding naming the event and the field) and the rest go on."""
        entry = f"job-events[{position}]"
        if not isinstance(event, dict):
            self._set_aside(f"GET {EVENTS}", entry, None, "not an object")
            return None
        if is_reference(event.get("id")):
            entry = f"{entry} {event['id'].strip()}"
        kind = event.get("type")
        if not isinstance(kind, str) or not kind.strip():
            self._set_aside(f"GET {EVENTS}", entry, "type", "no event type")
            return None
        if kind not in ("status_changed", "cancelled"):
            return None   # created, note_added and kinds added later: not a status change
        actor = event.get("actor") if isinstance(event.get("actor"), dict) else {}
        if actor.get("kind") == "api_client" and actor.get("id") == self.config.client_id:
            return None   # the hub's own change
        changed = aware_time(event.get("occurred_at"))
        problem = next(((f, why) for f, ok, why in (
            ("id", is_reference(event.get("id")), "no readable event id"),
            ("job_id", is_reference(event.get("job_id")), "no readable job reference"),
            ("status", is_status_word(event.get("status")), "no readable status word"),
            ("occurred_at", changed is not None, "no time with an offset"),
        ) if not ok), None)
        if problem is not None:
            self._set_aside(f"GET {EVENTS}", entry, *problem)
            return None
        assert changed is not None
        if changed <= since:
            return None   # "since" is strict
        status = event["status"].strip().upper()
        client_reference = _text(event, "client_reference")
        return Update(system=self.system_id(), update_id=event["id"].strip(),
                      reference=event["job_id"].strip(), status=status,
                      changed_at=changed.astimezone(timezone.utc),
                      key=client_reference if is_reference(client_reference) else None,
                      crm_status="closed" if status in CLOSED else "open",
                      note=_text(event, "note"))

    def _slot(self, position: int, slot: Any) -> dict[str, Any] | None:
        """A slot with room as the look-up answers it; full slots are None; an available slot
        without a readable id or date is set aside."""
        if not isinstance(slot, dict):
            self._set_aside(f"GET {SLOTS}", f"appointment-slots[{position}]", None,
                            "not an object")
            return None
        if slot.get("available") is not True:
            return None
        day = _text(slot, "date")
        problem = (("slot_id", "no readable slot id") if not is_reference(slot.get("slot_id"))
                   else ("date", "no readable date") if _iso_date(day) is None else None)
        if problem is not None:
            self._set_aside(f"GET {SLOTS}", f"appointment-slots[{position}]", *problem)
            return None
        return {"slot_id": slot["slot_id"].strip(), "date": day,
                "start": _text(slot, "start"), "end": _text(slot, "end")}

    def _set_aside(self, operation: str, entry: str, field: str | None, reason: str) -> None:
        self.set_aside(operation=operation, entry=entry, field=field, reason=reason,
                       code="bad-value")


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _iso_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _param(params: Mapping[str, Any], name: str, shape: re.Pattern[str], *,
           upper: bool = False) -> str:
    """A look-up parameter checked at the edge: present and of the expected shape."""
    raw = params.get(name)
    value = raw.strip() if isinstance(raw, str) else str(raw) if isinstance(raw, int) else ""
    value = value.upper() if upper else value
    if not value:
        raise Rejected(f"lookup: field {name} is required", code="invalid-field", field=name)
    if not shape.fullmatch(value):
        raise Rejected(f"lookup: field {name} is not in the expected form", code="invalid-field",
                       field=name)
    return value


def _confirmed(command: Command, job: Mapping[str, Any]) -> Outcome:
    appointment = job.get("appointment") if isinstance(job.get("appointment"), dict) else {}
    details = {"job": job["id"], "target_date": _text(job, "target_date"),
               "appointment_date": _text(appointment, "date")}
    return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=job["id"],
                   details={k: v for k, v in details.items() if v})


def _job_fields(job: Mapping[str, Any]) -> dict[str, Any]:
    """A listed job's values named as ``RepairRequest``'s fields (contact details are not
    listed by the API, so not compared); a value of the wrong type is left out, not guessed."""
    location = job.get("location") if isinstance(job.get("location"), dict) else {}
    appointment = job.get("appointment") if isinstance(job.get("appointment"), dict) else {}
    values = {"uprn": location.get("property_reference"), "priority": job.get("priority"),
              "trade": job.get("trade"), "description": job.get("description"),
              "room": location.get("room"), "location_detail": location.get("detail"),
              "access_notes": job.get("access_notes"),
              "appointment_slot_id": appointment.get("slot_id")}
    return {name: value for name, value in values.items() if value is None or isinstance(value, str)}


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, {}, "")}


def _job_body(command: Command, model: RepairRequest) -> dict[str, Any]:
    slot = model.appointment_slot_id
    return _compact({
        "client_reference": command.key, "source_reference": command.case_ref[:40],
        "priority": model.priority, "trade": model.trade, "description": model.description,
        "location": _compact({"property_reference": model.uprn, "room": model.room,
                              "detail": model.location_detail}),
        "access_notes": model.access_notes,
        "contact": _compact({"name": model.contact_name, "phone": model.contact_phone}),
        "appointment": {"slot_id": slot} if slot else None})
