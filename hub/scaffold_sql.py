"""The files ``hub new-connector --transport sql`` writes, where they differ from the REST ones
(the operations and the mapping are the same). The back office is a database the hub writes to
directly (as connectors/licensing/uniform.py does); its simulator stub is the schema and the
staff's own changes, on SQLAlchemy (SQLite in the generated test; any URL in production).
"""
from __future__ import annotations

from hub.scaffold_harness import CHANGE_IN_BACKOFFICE, OWN_COMMANDS, SUITE

CONNECTOR = '''"""$title over SQL (written by `hub new-connector`): writes into the system's own database.
TODO(vendor): its tables, columns, status words and how it marks the hub's own rows."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from pydantic import Field, SecretStr
from sqlalchemy import text

from connectors.base import Command, Connector, ConnectorConfig, Outcome, OutcomeStatus, Update
from connectors.errors import Rejected
from connectors.$domain.$operations_module import OPERATIONS
from connectors.transports.sql import classified, make_engine

CLOSED = frozenset({"COMPLETED", "CANCELLED"})   # TODO(vendor): statuses that close the case


class ${cls}Config(ConnectorConfig):
    connection_fields = {"host": "url", "password": "password"}
    url: str = Field(min_length=1)   # a SQLAlchemy URL
    password: SecretStr | None = None
    lock_timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class ${cls}Connector(Connector[${cls}Config]):
    system = "$system_id"
    Config = ${cls}Config
    operations = OPERATIONS

    def __init__(self, config: ${cls}Config) -> None:
        super().__init__(config)
        self.engine = make_engine(config.url, password=config.password,
                                  connect_timeout=config.timeout_seconds,
                                  lock_timeout=config.lock_timeout_seconds,
                                  statement_timeout=config.timeout_seconds)

    def check(self) -> None:
        with classified(f"{self.system_id()} check"), self.engine.connect() as db:
            db.execute(text("SELECT COUNT(*) FROM subjects"))

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        return self.submit_each(commands, self._apply)

    def _apply(self, command: Command) -> Outcome:
        """Look up the key and insert in one transaction: a retry never creates twice."""
        model = self.validate(command)
        with classified(f"{self.system_id()} submit"), self.engine.begin() as db:
            found = db.execute(text("SELECT id FROM requests WHERE client_ref = :key"),
                               {"key": command.key}).first()
            known = found or db.execute(text("SELECT 1 FROM subjects WHERE subject_ref = :s"),
                                        {"s": model.subject_ref}).first()
            if found is None and known:
                now = _stamp(datetime.now(timezone.utc))
                db.execute(text("INSERT INTO requests (client_ref, subject_ref, description, "
                                "contact_name, status) VALUES (:key, :subject_ref, :description, "
                                ":contact_name, 'OPEN')"), {"key": command.key, **model.model_dump()})
                found = db.execute(text("SELECT id FROM requests WHERE client_ref = :key"),
                                   {"key": command.key}).one()
                db.execute(text("INSERT INTO request_events (request_id, status, actor, "
                                "occurred_at) VALUES (:id, 'OPEN', 'hub', :now)"),
                           {"id": found.id, "now": now})
        if found is None:
            raise Rejected(f"{command.operation}: unknown subject", code="unknown_subject",
                           field="subject_ref")
        return Outcome(command.key, OutcomeStatus.CONFIRMED, reference=f"R{found.id}")

    def fetch_updates(self, since: datetime) -> list[Update]:
        """Staff changes after ``since`` (strict): times are stored as UTC text, microseconds."""
        since = since.replace(tzinfo=since.tzinfo or timezone.utc)
        with classified(f"{self.system_id()} fetch updates"), self.engine.connect() as db:
            rows = db.execute(text(
                "SELECT e.id, e.status, e.occurred_at, r.id AS request_id, r.client_ref "
                "FROM request_events e JOIN requests r ON r.id = e.request_id "
                "WHERE e.actor <> 'hub' AND e.occurred_at > :since ORDER BY e.occurred_at, e.id"),
                {"since": _stamp(since)}).all()
        return [Update(system=self.system_id(), update_id=f"E{row.id}",
                       reference=f"R{row.request_id}", status=row.status,
                       changed_at=datetime.fromisoformat(row.occurred_at), key=row.client_ref,
                       crm_status="closed" if row.status in CLOSED else "open") for row in rows]

    def close(self) -> None:
        self.engine.dispose()


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
'''

CONTRACT_TEST = '''"""The contract suite against the $title database (written by `hub new-connector`)."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.base import Command, Outcome
from connectors.$domain.$system import ${cls}Config, ${cls}Connector
from connectors.testing import ConnectorContractSuite
from simulators.$domain.$simulator_module import BackOffice


class ${cls}Harness:
    personal_values = ("Alex Testperson-Example",)   # every personal value command() carries

    def __init__(self, office: BackOffice) -> None:
        self.office, self.prefix = office, uuid.uuid4().hex[:10]

    def connector(self, **overrides: object) -> ${cls}Connector:
        values = {"url": self.office.url, "lock_timeout_seconds": 0.2,
                  "retry_max_wait_seconds": 0.3, **overrides}
        return ${cls}Connector(${cls}Config(**values))   # type: ignore[arg-type]

    def connector_with_bad_credentials(self) -> ${cls}Connector:
        return self.connector(url="sqlite:////nonexistent-directory/backoffice.db")

''' + OWN_COMMANDS + '''
    def effects(self) -> int:
        return self.office.requests_created()

    def fail_next(self, calls: int) -> None:
        """Hold the database's write lock a little longer than the connector waits for it."""
        held = threading.Event()
        threading.Thread(target=self.office.hold_write_lock, args=(0.3 * calls, held),
                         daemon=True).start()
        assert held.wait(10)

''' + CHANGE_IN_BACKOFFICE + '''
    def settle(self) -> None:
        """The database answers at once."""


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackOffice]:
    db = Path(tmp_path_factory.mktemp("$system")) / "backoffice.db"
    office = BackOffice(f"sqlite:///{db}")
    office.install()
    yield office
    office.close()


@pytest.fixture
def contract_harness(office: BackOffice) -> ${cls}Harness:
    return ${cls}Harness(office)


''' + SUITE

SIMULATOR = '''"""A stand-in for the $title database (a stub written by `hub new-connector`).

TODO(vendor): the system's own tables and columns, from its documentation, never from the
connector (simulators import no connector). ``install`` creates and seeds them; ``staff_change``
is an officer's change (what status sync must find); ``hold_write_lock`` makes the next writes
wait, as another user's long transaction does.
"""
from __future__ import annotations

import threading
import time

from sqlalchemy import (Column, ForeignKey, Integer, MetaData, String, Table, Text, create_engine,
                        func, insert, select, update)

from simulators.kit import Clock

metadata = MetaData()
subjects = Table("subjects", metadata, Column("subject_ref", String(20), primary_key=True))
requests = Table("requests", metadata,
                 Column("id", Integer, primary_key=True, autoincrement=True),
                 Column("client_ref", String(64), unique=True, nullable=False),
                 Column("subject_ref", String(20), nullable=False),
                 Column("description", Text, nullable=False),
                 Column("contact_name", String(100)),
                 Column("status", String(40), nullable=False))
events = Table("request_events", metadata,
               Column("id", Integer, primary_key=True, autoincrement=True),
               Column("request_id", Integer, ForeignKey("requests.id"), nullable=False),
               Column("status", String(40), nullable=False),
               Column("actor", String(40), nullable=False),
               Column("occurred_at", String(40), nullable=False))


class BackOffice:
    def __init__(self, url: str) -> None:
        self.url, self.clock = url, Clock()
        self.engine = create_engine(url, connect_args={"timeout": 10})

    def install(self, subject_count: int = 1000) -> None:
        metadata.create_all(self.engine)
        with self.engine.begin() as db:
            db.execute(insert(subjects), [{"subject_ref": f"AB{n:06d}"}
                                          for n in range(subject_count)])

    def requests_created(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(select(func.count()).select_from(requests)).scalar_one())

    def staff_change(self, reference: str, status: str) -> None:
        request_id = int(reference.removeprefix("R"))
        with self.engine.begin() as db:
            db.execute(update(requests).where(requests.c.id == request_id).values(status=status))
            db.execute(insert(events).values(
                request_id=request_id, status=status, actor="staff",
                occurred_at=self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")))

    def hold_write_lock(self, seconds: float, held: threading.Event) -> None:
        with self.engine.connect() as db:
            db.exec_driver_sql("BEGIN IMMEDIATE")
            held.set()
            time.sleep(seconds)
            db.exec_driver_sql("COMMIT")

    def close(self) -> None:
        self.engine.dispose()
'''
