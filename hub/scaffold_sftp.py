"""The files ``hub new-connector --transport sftp`` writes, where they differ from the REST ones
(the operations and the mapping are the same). The back office exchanges batch files over SFTP,
as connectors/benefits/academy.py does: the hub uploads one request file per batch
(``connectors/transports/sftp.py``: known host keys only, a temporary name then a rename, verified),
every record ``AWAITING``; the back office answers later in files of its own, read incrementally
and size-limited, that ``fetch_updates`` turns into answers (``resolves``) and staff changes.
The simulator stub is the back office's side of the exchange folder
(``simulators/<domain>/backoffice.py``); the generated contract test serves the folder with the
test suite's real OpenSSH sshd (``tests/support/sshd.py``, as the benefits tests do).
"""
from __future__ import annotations

from hub.scaffold_harness import CHANGE_IN_BACKOFFICE, OWN_COMMANDS, SUITE

CONNECTOR = '''"""$title over SFTP batch files (written by `hub new-connector`): one request file per batch,
answers and staff changes in the back office's own files. TODO(vendor): its file names, columns,
status words and reason codes, and archiving the files read (connectors/benefits/academy.py)."""
from __future__ import annotations

import csv
import io
import logging
import secrets
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone

from pydantic import SecretStr

from connectors.base import Command, Connector, ConnectorConfig, Outcome, OutcomeStatus, Update
from connectors.errors import ConnectorError, Rejected, UnreadableAnswer
from connectors.fields import aware_time, is_reference, is_status_word
from connectors.$domain.$operations_module import OPERATIONS
from connectors.transports import sftp

log = logging.getLogger(__name__)
COLUMNS = ("record_id", "subject_ref", "description", "contact_name")   # TODO(vendor): its layout
CLOSED = frozenset({"COMPLETED", "CANCELLED"})   # TODO(vendor): statuses that close the case


class ${cls}Config(ConnectorConfig):
    connection_fields = {"host": "host", "port": "port", "login": "username", "password": "password"}
    host: str
    port: int = 22
    username: str
    password: SecretStr | None = None
    private_key_path: str | None = None
    known_hosts_path: str | None = None
    host_key: str | None = None   # one known_hosts line, when no known_hosts file is used
    inbound_dir: str = "inbound"
    outbound_dir: str = "outbound"
    response_due_minutes: int = 24 * 60


class ${cls}Connector(Connector[${cls}Config]):
    system = "$system_id"
    Config = ${cls}Config
    operations = OPERATIONS

    def _session(self) -> sftp.SftpSession:
        c = self.config
        return sftp.connect(sftp.SftpSettings(
            host=c.host, port=c.port, username=c.username, private_key_path=c.private_key_path,
            password=c.password.get_secret_value() if c.password else None,
            known_hosts_path=c.known_hosts_path, host_key=c.host_key, timeout=c.timeout_seconds))

    def check(self) -> None:
        with self._session() as session:
            session.list_files(self.config.inbound_dir)
            session.list_files(self.config.outbound_dir)

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        """The valid commands in one file, each AWAITING; the back office answers by record id
        (the command key), so a file sent again applies nothing twice."""
        outcomes: dict[int, Outcome] = {}
        rows = []
        for n, command in enumerate(commands):
            try:
                rows.append((n, command, self.validate(command).model_dump(exclude_none=True)))
            except Rejected as exc:
                outcomes[n] = Outcome(command.key, OutcomeStatus.REJECTED, message=exc.message,
                                      code=exc.code, field=exc.field)
        if rows:
            now = datetime.now(timezone.utc)
            name = f"REQ_{now:%Y%m%dT%H%M%S%f}_{secrets.token_hex(4)}.csv"
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\\n")
            writer.writerow(COLUMNS)
            writer.writerows([c.key, *(p.get(k, "") for k in COLUMNS[1:])] for _, c, p in rows)
            try:
                self.retrying()(self._upload, text.getvalue().encode(), name)
                status, message, code = OutcomeStatus.AWAITING, None, None
            except ConnectorError as exc:
                status, message, code = OutcomeStatus.RETRY, exc.message, exc.code
            due = (now + timedelta(minutes=self.config.response_due_minutes)).isoformat()
            for n, command, _ in rows:
                outcomes[n] = Outcome(command.key, status, message=message, code=code,
                                      details={"file": name, "due_by": due})
        return [outcomes[n] for n in range(len(commands))]

    def _upload(self, data: bytes, name: str) -> None:
        folder = self.config.inbound_dir
        with self._session() as session:
            session.upload_verified(data, f"{folder}/.{name}.part", f"{folder}/{name}")
        log.info("%s: request file delivered (%d bytes)", self.system_id(), len(data))

    def fetch_updates(self, since: datetime) -> list[Update]:
        """Answers and staff changes after ``since`` (strict); unreadable lines set aside."""
        since = since.replace(tzinfo=since.tzinfo or timezone.utc).astimezone(timezone.utc)
        folder, updates = self.config.outbound_dir, []
        with self._session() as session:
            for entry in sorted(session.list_files(folder), key=lambda e: e.filename):
                if entry.filename.startswith("RES_") and entry.filename.endswith(".csv"):
                    lines = session.iter_lines(f"{folder}/{entry.filename}",
                                               max_bytes=self.config.max_answer_bytes)
                    updates += self._read(entry.filename, lines, since)
        return sorted(updates, key=lambda u: (u.changed_at, u.update_id))

    def _read(self, name: str, lines: Iterator[bytes], since: datetime) -> list[Update]:
        text = (line.decode("utf-8", errors="replace") for line in lines)
        try:
            rows = list(csv.DictReader(text))
        except (csv.Error, UnreadableAnswer) as exc:
            self.set_aside(operation="read answers", entry=name, field=None,
                           reason=type(exc).__name__, code="unreadable-file")
            return []
        updates = []
        for n, row in enumerate(rows, start=2):
            at, kind, status = aware_time(row.get("occurred_at")), row.get("kind"), row.get("status")
            ref = row.get("reference") or row.get("record_id")
            checks = (("event_id", is_reference(row.get("event_id"))), ("occurred_at", at),
                      ("kind", kind in ("RESULT", "CHANGE")), ("status", is_status_word(status)),
                      ("reference", is_reference(ref)))
            bad = next((field for field, ok in checks if not ok), None)
            if bad is not None:
                self.set_aside(operation="read answers", entry=f"{name} line {n}", field=bad,
                               reason="no readable value", code="bad-value")
            elif at > since:   # type: ignore[operator]
                status = status.strip().upper()   # type: ignore[union-attr]
                answer = (OutcomeStatus.REJECTED if status == "REJECTED" else
                          OutcomeStatus.CONFIRMED) if kind == "RESULT" else None
                updates.append(Update(
                    system=self.system_id(), update_id=row["event_id"].strip(),
                    reference=ref.strip(), status=status, changed_at=at,   # type: ignore[arg-type,union-attr]
                    key=row.get("record_id") or None, resolves=answer,
                    message=f"refused: {row.get('code') or 'no code'} ({row.get('field') or '-'})"
                    if answer is OutcomeStatus.REJECTED else None,
                    crm_status="closed" if status in CLOSED else "open"))
        return updates
'''

CONTRACT_TEST = '''"""The contract suite against the $title exchange folder over a real sshd
(written by `hub new-connector`); the back office answers when the harness settles."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from connectors.base import Command, Outcome
from connectors.$domain.$system import ${cls}Config, ${cls}Connector
from connectors.testing import ConnectorContractSuite
from simulators.$domain.$simulator_module import BackOffice
from tests.support.sshd import SshServer, sshd_server  # noqa: F401 - the session fixture

pytestmark = pytest.mark.sshd


class ${cls}Harness:
    personal_values = ("Alex Testperson-Example",)   # every personal value command() carries

    def __init__(self, sshd: SshServer, office: BackOffice) -> None:
        self.sshd, self.office, self.prefix = sshd, office, uuid.uuid4().hex[:10]

    def connector(self, **overrides: object) -> ${cls}Connector:
        values = {"host": self.sshd.host, "port": self.sshd.port, "username": self.sshd.username,
                  "private_key_path": str(self.sshd.client_key_path),
                  "known_hosts_path": str(self.sshd.known_hosts_path), "timeout_seconds": 5,
                  "retry_max_wait_seconds": 0.3, **overrides}
        return ${cls}Connector(${cls}Config(**values))   # type: ignore[arg-type]

    def connector_with_bad_credentials(self) -> ${cls}Connector:
        return self.connector(private_key_path=str(self.sshd.stranger_key_path))

''' + OWN_COMMANDS + '''
    def effects(self) -> int:
        return self.office.effects()

    def fail_next(self, calls: int) -> None:
        self.sshd.fail_next(calls)   # the next SFTP sessions are refused

''' + CHANGE_IN_BACKOFFICE + '''
    def settle(self) -> None:
        self.office.process()   # the back office's batch run


@pytest.fixture
def contract_harness(sshd_server: SshServer, tmp_path: Path) -> ${cls}Harness:  # noqa: F811
    office = BackOffice(tmp_path / "exchange", tmp_path / "backoffice.db")
    sshd_server.fail_next(0)
    sshd_server.use_root(office.root)
    return ${cls}Harness(sshd_server, office)


''' + SUITE

SIMULATOR = '''"""The $title back office's side of the SFTP exchange folder (a stub written by
`hub new-connector`): ``process()`` is its batch run, ``staff_change`` an officer's change.

TODO(vendor): the vendor's documented file names, columns, answers and reason codes, never the
connector's (simulators import no connector). Serve ``root`` over SFTP with a real sshd
(``tests/support/sshd.py``) or ``simulators/benefits/sftp_server.py`` for a demo.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from simulators.kit import Clock, SqliteState, locked

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (reference TEXT PRIMARY KEY, record_id TEXT UNIQUE NOT NULL,
    subject_ref TEXT NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT);
"""
ANSWER = ("event_id", "record_id", "reference", "kind", "status", "code", "field", "occurred_at")


class BackOffice(SqliteState):
    def __init__(self, root: Path, db_path: Path) -> None:
        super().__init__(db_path, SCHEMA)
        self.root, self.clock = Path(root), Clock()
        for folder in ("inbound", "outbound", "done"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def process(self) -> None:
        """Answer every complete request file in ``inbound`` (temporary names are not)."""
        for path in sorted((self.root / "inbound").glob("REQ_*.csv")):
            with path.open(newline="", encoding="utf-8") as handle:
                self._write([self._answer(row) for row in csv.DictReader(handle)])
            path.rename(self.root / "done" / path.name)

    def _answer(self, row: dict[str, Any]) -> list[str]:
        with self.transaction() as db:
            known = db.execute("SELECT reference FROM records WHERE record_id = ?",
                               (row["record_id"],)).fetchone()
            if (row.get("subject_ref") or "X").startswith("X") and known is None:
                return self._event(db, row["record_id"], "", "RESULT", "REJECTED",
                                   "UNKNOWN_SUBJECT", "subject_ref")   # TODO(vendor): its refusals
            if known is None:
                count = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
                known = (f"BR{count + 1:07d}",)
                db.execute("INSERT INTO records VALUES (?, ?, ?, 'OPEN')",
                           (known[0], row["record_id"], row["subject_ref"]))
            return self._event(db, row["record_id"], known[0], "RESULT", "CONFIRMED")

    def _event(self, db: Any, record_id: str, reference: str, kind: str, status: str,
               code: str = "", field: str = "") -> list[str]:
        event = db.execute("INSERT INTO events DEFAULT VALUES").lastrowid
        return [f"EV{event:08d}", record_id, reference, kind, status, code, field,
                self.clock.stamp()]

    def staff_change(self, reference: str, status: str) -> None:
        with self.transaction() as db:
            record = db.execute("SELECT record_id FROM records WHERE reference = ?",
                                (reference,)).fetchone()
            if record is None:
                raise LookupError(reference)
            db.execute("UPDATE records SET status = ? WHERE reference = ?", (status, reference))
            line = self._event(db, record[0], reference, "CHANGE", status)
        self._write([line])

    def _write(self, lines: list[list[str]]) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\\n")
        writer.writerow(ANSWER)
        writer.writerows(lines)
        name = f"RES_{self.clock.now():%Y%m%dT%H%M%S%f}.csv"
        temporary = self.root / "outbound" / f".{name}.part"
        temporary.write_text(text.getvalue(), encoding="utf-8")
        temporary.rename(self.root / "outbound" / name)

    @locked
    def effects(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
'''
