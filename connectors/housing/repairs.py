"""Housing repairs over REST (docs/connectors/housing.md): repair jobs with the command key as
client reference, their status changes, appointment slots and cancellation."""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast

import httpx
from pydantic import Field

from connectors.base import Command, Connector, Outcome, OutcomeStatus, Update
from connectors.errors import Rejected, UnknownOutcomeError
from connectors.housing.operations import OPERATIONS, CancelRepair, RepairRequest
from connectors.transports.rest import (HttpRejected, RestConfig, cursor_pages, next_link_pages,
                                        page_number_pages)

log = logging.getLogger(__name__)
JOBS, EVENTS, SLOTS = "/api/v2/jobs", "/api/v2/job-events", "/api/v2/appointment-slots"
CLOSED = frozenset({"COMPLETED", "CANCELLED"})
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

    name = "repairs"
    domain = "housing"
    default_conn_id = "housing_repairs"
    Config = RepairsConfig
    operations = OPERATIONS

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
        updates = [u for u in (self._update(e, since) for e in events) if u is not None]
        return sorted(updates, key=lambda u: (u.changed_at, u.update_id))

    def lookup(self, kind: str, params: Mapping[str, Any]) -> Any:
        if kind != "housing.appointment_slots":
            return super().lookup(kind, params)
        try:
            first = date.fromisoformat(str(params.get("from") or date.today() + timedelta(days=1)))
        except ValueError as exc:
            raise Rejected(f"{kind}: field from is not a date", code="invalid-field",
                           field="from") from exc
        query = {"property_reference": _required(params, "uprn"),
                 "trade": _required(params, "trade").upper(), "from": first.isoformat(),
                 "to": (first + timedelta(days=self.config.slot_window_days)).isoformat()}
        slots = self.retrying()(lambda: list(page_number_pages(self.http, SLOTS, params=query)))
        return [{k: s.get(k) for k in ("slot_id", "date", "start", "end")} for s in slots
                if isinstance(s, dict) and s.get("available") is True and _text(s, "slot_id")]

    def snapshot(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        # TODO(reconcile): move onto the streaming read the contract gains (issue 7): list
        # GET /api/v2/jobs (next-link pages) once instead of one look-up per key.
        found = {key: self._find(key) for key in keys}
        return {key: {"reference": job["id"], "status": job.get("status"),
                      "crm_status": "closed" if job.get("status") in CLOSED else "open"}
                for key, job in found.items() if job is not None}

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
        if not _text(job, "id"):
            raise UnknownOutcomeError("housing_repairs: created job has no id", code="contract")
        log.info("housing_repairs: %s created %s", command.operation, job["id"])
        return _confirmed(command, job)

    def _cancel(self, command: Command, model: CancelRepair) -> Outcome:
        jobs = [j for j in next_link_pages(self.http, JOBS,
                                           params={"source_reference": command.case_ref[:40]})
                if isinstance(j, dict) and _text(j, "id")]
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
        for job in next_link_pages(self.http, JOBS, params={"client_reference": key}):
            if isinstance(job, dict) and job.get("client_reference") == key and _text(job, "id"):
                return job
        return None

    def _update(self, event: Any, since: datetime) -> Update | None:
        """One status change, or None for other events, the hub's own, and unreadable ones."""
        if not isinstance(event, dict) or event.get("type") not in ("status_changed", "cancelled"):
            return None
        actor = event.get("actor") if isinstance(event.get("actor"), dict) else {}
        if actor.get("kind") == "api_client" and actor.get("id") == self.config.client_id:
            return None   # the hub's own change
        missing = next((f for f in ("id", "job_id", "status", "occurred_at")
                        if not _text(event, f)), None)
        try:
            changed = datetime.fromisoformat(event["occurred_at"]) if not missing else None
        except ValueError:
            changed = None
        if missing or changed is None or changed.tzinfo is None:
            ref = event.get("id") if re.fullmatch(r"[\w.-]{1,40}", str(event.get("id"))) else "?"
            log.warning("housing_repairs: event %s skipped: field %s unreadable", ref,
                        missing or "occurred_at")
            return None
        if changed <= since:
            return None   # "since" is strict
        status = event["status"].strip().upper()
        return Update(system=self.system_id(), update_id=event["id"], reference=event["job_id"],
                      status=status, changed_at=changed.astimezone(timezone.utc),
                      key=_text(event, "client_reference"),
                      crm_status="closed" if status in CLOSED else "open",
                      note=_text(event, "note"))


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _required(params: Mapping[str, Any], name: str) -> str:
    value = str(params.get(name) or "").strip()
    if not value:
        raise Rejected(f"lookup: field {name} is required", code="invalid-field", field=name)
    return value


def _confirmed(command: Command, job: Mapping[str, Any]) -> Outcome:
    appointment = job.get("appointment") if isinstance(job.get("appointment"), dict) else {}
    details = {"job": job["id"], "target_date": _text(job, "target_date"),
               "appointment_date": _text(appointment, "date")}
    return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=job["id"],
                   details={k: v for k, v in details.items() if v})


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
