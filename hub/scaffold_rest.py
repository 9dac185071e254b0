"""The files ``hub new-connector --transport rest`` writes (``string.Template``: ``$name`` fields, ``$$`` for a dollar).

Each passes the contract suite as generated; ``TODO(vendor)`` marks where the vendor's own paths,
field names, status words and actor rules go. Kept short on purpose: the connector, operations,
mapping and contract test are what a new REST system costs (docs/connectors.md counts them).
"""
from __future__ import annotations

from hub.scaffold_harness import KIT_COMMANDS, SUITE

CONNECTOR = '''"""$title over REST (written by `hub new-connector`).
TODO(vendor): the API's paths, fields, status words and actors; see docs/connectors.md."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Literal

from connectors.base import Command, Outcome, OutcomeStatus, Update
from connectors.errors import UnknownOutcomeError
from connectors.fields import aware_time, is_reference, is_status_word
from connectors.$domain.$operations_module import OPERATIONS
from connectors.transports.rest import RestConfig, RestConnector, cursor_pages, next_link_pages

log = logging.getLogger(__name__)
RECORDS, EVENTS = "/api/records", "/api/events"   # TODO(vendor): the API's paths
CLOSED = frozenset({"COMPLETED", "CANCELLED"})    # TODO(vendor): statuses that close the case


class ${cls}Config(RestConfig):
    auth: Literal["oauth2", "basic", "bearer"] = "bearer"   # TODO(vendor): how it authenticates


class ${cls}Connector(RestConnector[${cls}Config]):
    system = "$system_id"
    Config = ${cls}Config
    operations = OPERATIONS
    check_path = "/api/ping"   # TODO(vendor): a cheap authenticated call

    def fetch_updates(self, since: datetime) -> list[Update]:
        since = since.replace(tzinfo=since.tzinfo or timezone.utc).astimezone(timezone.utc)
        query = {"changed_after": since.isoformat(timespec="microseconds")}
        events = self.retrying()(lambda: list(cursor_pages(self.http, EVENTS, params=query)))
        updates = [u for n, e in enumerate(events) if (u := self._update(n, e, since))]
        return sorted(updates, key=lambda u: (u.changed_at, u.update_id))

    def apply_one(self, command: Command) -> Outcome:
        payload = self.validate(command).model_dump(exclude_none=True)
        return self._found(command.key) or self._create(command, payload)   # look, then create

    def _create(self, command: Command, payload: dict[str, Any]) -> Outcome:
        body = {"client_reference": command.key, **payload}
        created = self.http.post(RECORDS, json=body).json_object().get("id")
        if not is_reference(created):
            raise UnknownOutcomeError(f"{self.system_id()}: created record has no readable id",
                                      code="contract", field="id")
        log.info("%s: %s created %s", self.system_id(), command.operation, created)
        return Outcome(command.key, OutcomeStatus.CONFIRMED, reference=created.strip())

    def _found(self, key: str) -> Outcome | None:
        for record in next_link_pages(self.http, RECORDS, params={"client_reference": key}):
            if isinstance(record, dict) and record.get("client_reference") == key \\
                    and is_reference(record.get("id")):
                return Outcome(key, OutcomeStatus.CONFIRMED, reference=record["id"].strip())
        return None

    def _update(self, n: int, event: Any, since: datetime) -> Update | None:
        """A staff change after ``since`` (strict); the hub's own and unreadable ones are not."""
        if not isinstance(event, dict) or event.get("actor") == "api":   # TODO(vendor): actor
            return None
        changed = aware_time(event.get("occurred_at"))
        for field, ok in (("id", is_reference(event.get("id"))), ("occurred_at", changed),
                          ("record_id", is_reference(event.get("record_id"))),
                          ("status", is_status_word(event.get("status")))):
            if not ok:
                self.set_aside(operation=f"GET {EVENTS}", entry=f"events[{n}]", field=field,
                               reason="no readable value", code="bad-value")
                return None
        if changed is None or changed <= since:
            return None
        status, key = event["status"].strip().upper(), event.get("client_reference")
        return Update(system=self.system_id(), update_id=event["id"].strip(),
                      reference=event["record_id"].strip(), status=status, changed_at=changed,
                      key=key if is_reference(key) else None,
                      crm_status="closed" if status in CLOSED else "open")
'''

OPERATIONS = '''"""Operations of $title (written by `hub new-connector`).
TODO(vendor): the fields each operation takes, with the system's own codes and limits."""
from __future__ import annotations

from pydantic import Field

from connectors.fields import NonEmpty, OperationModel


class Request(OperationModel):
    subject_ref: str = Field(pattern=r"^[A-Z0-9]{1,20}$$")   # what it is about (account, property)
    description: NonEmpty = Field(max_length=2000)
    contact_name: NonEmpty | None = Field(default=None, max_length=100)


OPERATIONS: dict[str, type[OperationModel]] = {"$domain.request": Request}
'''

MAPPING = '''case_type: $case_type
description: "TODO(vendor): the CRM case, and what $title does with it (by hub new-connector)"

inputs:
  subject.reference: {type: string, required: true}
  description: {type: string, required: true}
  contact.name: {type: string}

commands:
  - step: request
    system: $system_id
    operation: $domain.request
    fields:
      subject_ref: {from: subject.reference, transforms: [strip, upper]}
      description: {from: description, transforms: [strip]}
      contact_name: {from: contact.name, transforms: [strip, null_if_blank]}

examples:
  - subject: {reference: AB000001}
    description: Example request
'''

CONTRACT_TEST = '''"""The contract suite against the $title simulator (written by `hub new-connector`)."""
from __future__ import annotations

from connectors.base import Command
from connectors.$domain.$system import ${cls}Connector
from connectors.testing import ConnectorContractSuite
from simulators.$domain.$simulator_module import create_app
from tests.support.harness import SimulatorHarness

TOKEN = "$system-test-token"


class ${cls}Harness(SimulatorHarness):
    system_id = "$system_id"
    connector_class = ${cls}Connector
    bad_credentials = {"client_secret": "wrong-token"}
    personal_values = ("Alex Testperson-Example",)   # every personal value command() carries

    def settings(self) -> dict[str, object]:
        return {"base_url": self.url, "client_secret": TOKEN}

''' + KIT_COMMANDS + '''

served, contract_harness = ${cls}Harness.fixtures(
    lambda tmp: create_app(tmp / "sim.db", token=TOKEN))


''' + SUITE

SIMULATOR = '''"""A simulator of $title (a stub written by `hub new-connector`) on simulators/kit.py.

TODO(vendor): answer in the vendor's documented shapes (paths, fields, errors, paging), from its
documentation or recorded answers, never from the connector (simulators import no connector).
The kit gives it the admin API (``/admin/stats``, ``/admin/faults``, ``/admin/clock``,
``/admin/records/{reference}/status``) and transient faults on ``/api``.
"""
from __future__ import annotations

import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from simulators.kit import Clock, FaultInjector, FaultSwitch, SqliteState, admin_router, locked

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (reference TEXT PRIMARY KEY, client_reference TEXT UNIQUE,
    status TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT NOT NULL,
    status TEXT NOT NULL, actor TEXT NOT NULL, note TEXT, occurred_at TEXT NOT NULL);
"""


class NewRecord(BaseModel):
    client_reference: str = Field(min_length=1, max_length=64)
    subject_ref: str = Field(pattern=r"^[A-Z0-9]{1,20}$$")
    description: str = Field(min_length=1, max_length=2000)
    contact_name: str | None = Field(default=None, max_length=100)


class Store(SqliteState):
    def __init__(self, path: Path, clock: Clock) -> None:
        super().__init__(path, SCHEMA)
        self.clock = clock

    def create(self, record: NewRecord) -> dict[str, Any] | None:
        """The new record, or None when its client reference is taken."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM records WHERE client_reference = ?",
                          (record.client_reference,)).fetchone():
                return None
            count = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
            reference = f"REC{count + 1:07d}"
            db.execute("INSERT INTO records VALUES (?, ?, 'OPEN', ?)",
                       (reference, record.client_reference, record.model_dump_json()))
            db.execute("INSERT INTO events (reference, status, actor, occurred_at) "
                       "VALUES (?, 'OPEN', 'api', ?)", (reference, self.clock.stamp()))
        return self.record(reference)

    @locked
    def record(self, reference: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM records WHERE reference = ?", (reference,)).fetchone()
        return ({"id": row["reference"], "client_reference": row["client_reference"],
                 "status": row["status"], **json.loads(row["body"])} if row else None)

    @locked
    def find(self, client_reference: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT reference FROM records WHERE client_reference = ?",
                               (client_reference,)).fetchall()
        return [r for r in (self.record(row["reference"]) for row in rows) if r]

    @locked
    def events(self, after: datetime) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT e.*, r.client_reference FROM events e JOIN records r "
                               "ON r.reference = e.reference ORDER BY e.id").fetchall()
        return [{"id": f"EV{r['id']:08d}", "record_id": r["reference"], "status": r["status"],
                 "actor": r["actor"], "note": r["note"], "occurred_at": r["occurred_at"],
                 "client_reference": r["client_reference"]}
                for r in rows if datetime.fromisoformat(r["occurred_at"]) > after]

    def staff_change(self, reference: str, status: str, note: str | None) -> dict[str, Any]:
        with self.transaction() as db:
            if not db.execute("UPDATE records SET status = ? WHERE reference = ?",
                              (status.upper(), reference)).rowcount:
                raise LookupError(reference)
            db.execute("INSERT INTO events (reference, status, actor, note, occurred_at) "
                       "VALUES (?, ?, 'staff', ?, ?)", (reference, status.upper(), note,
                                                        self.clock.stamp()))
        return {"reference": reference, "status": status.upper()}

    @locked
    def stats(self) -> dict[str, int]:
        return {"effects": self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0]}


def _error(status: int, code: str, target: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "target": target}}, status_code=status)


def create_app(db_path: Path, *, token: str) -> FastAPI:
    clock, faults = Clock(), FaultSwitch()
    store = Store(Path(db_path), clock)

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if not hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "unauthorised")

    api = APIRouter(prefix="/api", dependencies=[Depends(authorised)])

    @api.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    @api.post("/records", status_code=201, response_model=None)
    def create(record: NewRecord) -> dict[str, Any] | JSONResponse:
        if record.subject_ref.startswith("X"):   # TODO(vendor): what the system refuses
            return _error(422, "unknown_subject", "subject_ref")
        created = store.create(record)
        return created if created is not None else _error(409, "duplicate_client_reference")

    @api.get("/records")
    def find(client_reference: str = Query(max_length=64)) -> dict[str, Any]:
        return {"items": store.find(client_reference), "links": {"next": None}}

    @api.get("/events", response_model=None)
    def events(changed_after: str = Query(max_length=64)) -> dict[str, Any] | JSONResponse:
        try:
            after = datetime.fromisoformat(changed_after)
        except ValueError:
            return _error(422, "invalid_time", "changed_after")
        if after.tzinfo is None:
            return _error(422, "invalid_time", "changed_after")
        return {"items": store.events(after), "next_cursor": None}

    app = FastAPI(title="$title", openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(FaultInjector, faults=faults, prefixes=("/api",))
    app.include_router(api)
    app.include_router(admin_router(stats=store.stats, faults=faults, clock=clock,
                                    staff_change=store.staff_change))
    return app
'''
