"""The back-office side of the Benefits file exchange, working directly on the exchange folders.

``process()`` is one run of the back office's batch job: it takes every complete file in the inbound
folder (temporary names are ignored), verifies its trailer, applies each record once (records are
de-duplicated by content hash because files overlap), and writes the answers that are due, plus any
staff changes, as one response file in the outbound folder. When anything changed since the last
one, it then publishes the claim extract (``publish_extract``: the "nightly" extract, every change
the back office holds, in the ``extract`` folder). State lives in SQLite.

Drift on purpose, for reconciliation (the simulator's admin interface is this class, as for
``staff_change``): ``drift_change`` changes a held change's status or a field with no ``S`` line,
``drift_delete`` removes one, ``drift_add`` adds one carrying a record id (a hub key).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from simulators.benefits import exchange as fmt

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (claim_ref TEXT PRIMARY KEY, status TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    content_hash TEXT PRIMARY KEY, record_id TEXT NOT NULL, file_name TEXT NOT NULL,
    claim_ref TEXT NOT NULL, change_type TEXT NOT NULL, result TEXT NOT NULL,
    reason_code TEXT NOT NULL, reason TEXT NOT NULL, received_at TEXT NOT NULL,
    release_at TEXT NOT NULL, answered INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS records_by_id ON records (record_id);
CREATE TABLE IF NOT EXISTS effects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, claim_ref TEXT NOT NULL, record_id TEXT NOT NULL,
    change_type TEXT NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS staff_changes (
    event_id TEXT PRIMARY KEY, claim_ref TEXT NOT NULL, record_id TEXT NOT NULL, status TEXT NOT NULL,
    note TEXT NOT NULL, made_at TEXT NOT NULL, written INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS files (
    name TEXT NOT NULL, received_at TEXT NOT NULL, status TEXT NOT NULL, reason_code TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
#: Columns added to ``records`` after the first version (older files get them on ``setup``).
_RECORD_COLUMNS = ("effective TEXT", "fields TEXT", "status TEXT", "status_at TEXT")
APPLIED = "CHANGE_APPLIED"
EXTRACT_PREFIX = "CLAIMS_"
KEEP_EXTRACTS = 2


@dataclass(frozen=True)
class ProcessReport:
    files: int
    records: int
    duplicates: int
    answers_written: int
    response_file: str | None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class BenefitsBackOffice:
    """A Housing Benefit back office exchanging files in ``root`` (inbound/outbound folders)."""

    def __init__(self, root: Path, db_path: Path, *, inbound: str = "inbound",
                 outbound: str = "outbound", archive: str = "archive",
                 response_delay_seconds: float = 0.0, late_fraction: float = 0.0,
                 late_delay_seconds: float = 3600.0,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.root = Path(root)
        self.inbound = self.root / inbound
        self.outbound = self.root / outbound
        self.archive = self.root / archive
        self.processed = self.root / "backoffice" / "processed"
        self.extract = self.root / "extract"
        self.db_path = Path(db_path)
        self.response_delay = timedelta(seconds=response_delay_seconds)
        self.late_fraction = late_fraction
        self.late_delay = timedelta(seconds=late_delay_seconds)
        self.clock = clock

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create the folders and the database (idempotent)."""
        for folder in (self.inbound, self.outbound, self.archive, self.processed, self.extract):
            folder.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(records)")}
            for column in _RECORD_COLUMNS:
                if column.split()[0] not in have:
                    db.execute(f"ALTER TABLE records ADD COLUMN {column}")

    def seed(self, claims: Iterable[Mapping[str, Any]]) -> int:
        """Add (or replace) claims the back office knows."""
        rows = [(c["claim_ref"], c.get("status", "live"), json.dumps(dict(c))) for c in claims]
        with self._db() as db:
            db.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", rows)
        return len(rows)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    # -- what tests and the demo read -----------------------------------------------------------
    def effects(self) -> int:
        """How many changes have been applied to claims."""
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM effects").fetchone()[0])

    def unpublished_staff_changes(self) -> int:
        """Staff changes not yet written to the outbound folder (published on the next run)."""
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM staff_changes WHERE written = 0").fetchone()[0])

    def claim(self, claim_ref: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute("SELECT data FROM claims WHERE claim_ref = ?", (claim_ref,)).fetchone()
        return json.loads(row[0]) if row else None

    def staff_change(self, claim_ref: str, status: str = "RECALCULATED",
                     note: str = "benefit recalculated", record_id: str = "") -> str:
        """A change made by staff; it appears in outbound as a status line on the next run."""
        event_id = f"EV{secrets.token_hex(6).upper()}"
        now = self.clock().isoformat()
        with self._db() as db:
            db.execute("INSERT INTO staff_changes VALUES (?, ?, ?, ?, ?, ?, 0)",
                       (event_id, claim_ref, record_id, status, note, now))
            # the change shows in the extract: on the record it names, else on the claim's changes
            where, key = ("record_id = ?", record_id) if record_id else ("claim_ref = ?", claim_ref)
            db.execute(f"UPDATE records SET status = ?, status_at = ? WHERE result = 'ACCEPTED' "
                       f"AND {where}", (status, now, key))
            self._changed(db)
        return event_id

    # -- the claim extract (what reconciliation reads) ------------------------------------------
    @staticmethod
    def _changed(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO meta VALUES ('changes', 1) "
                   "ON CONFLICT(name) DO UPDATE SET value = value + 1")

    def extract_due(self) -> bool:
        """Whether the back office changed since the last extract was published."""
        with self._db() as db:
            values = dict(db.execute("SELECT name, value FROM meta").fetchall())
        return values.get("changes", 0) != values.get("published", -1)

    def publish_extract(self) -> str:
        """Write the claim extract: one ``X`` line per accepted change, as held now, oldest
        first, streamed to ``extract/.CLAIMS_<time>.csv.part`` then renamed (only the last
        ``KEEP_EXTRACTS`` are kept). Returns the file name."""
        now = self.clock()
        name = f"{EXTRACT_PREFIX}{now:%Y%m%dT%H%M%S%f}{fmt.SUFFIX}"
        self.extract.mkdir(parents=True, exist_ok=True)
        temp = self.extract / fmt.partial_name(name)
        with self._db() as db:
            version = db.execute("SELECT value FROM meta WHERE name = 'changes'").fetchone()
            rows = db.execute(
                "SELECT record_id, claim_ref, change_type, effective, fields, status, "
                "COALESCE(status_at, received_at) FROM records WHERE result = 'ACCEPTED' "
                "ORDER BY received_at, record_id")
            with temp.open("wb") as out:
                count = fmt.write_extract(name.removesuffix(fmt.SUFFIX), now, (
                    fmt.extract_row(r[0], r[1], r[2], r[3] or "", r[4] or "{}", r[5] or APPLIED,
                                    datetime.fromisoformat(r[6])) for r in rows), out)
            db.execute("INSERT INTO meta VALUES ('published', ?) "
                       "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                       (version[0] if version else 0,))
        os.replace(temp, self.extract / name)
        for old in sorted(p for p in self.extract.iterdir() if fmt.is_ready(p.name))[:-KEEP_EXTRACTS]:
            old.unlink(missing_ok=True)
        log.info("benefits sim: published extract %s (%d changes)", name, count)
        return name

    # -- drift on purpose (admin; no S line: behind the hub's back) ---------------------------
    def drift_change(self, record_id: str, status: str | None = None,
                     fields: Mapping[str, Any] | None = None) -> None:
        """Change a held change's status and/or values in its fields (``member_name``...)."""
        with self._db() as db:
            row = db.execute("SELECT fields FROM records WHERE record_id = ? AND result = "
                             "'ACCEPTED'", (record_id,)).fetchone()
            if row is None:
                raise LookupError(record_id)
            values = json.loads(row[0] or "{}") | dict(fields or {})
            db.execute("UPDATE records SET fields = ?, status = COALESCE(?, status), "
                       "status_at = ? WHERE record_id = ?",
                       (fmt.canonical_json(values), status, self.clock().isoformat(), record_id))
            self._changed(db)

    def drift_delete(self, record_id: str) -> None:
        """Forget a held change (a bad data fix): gone from the extract."""
        with self._db() as db:
            if db.execute("DELETE FROM records WHERE record_id = ? AND result = 'ACCEPTED'",
                          (record_id,)).rowcount == 0:
                raise LookupError(record_id)
            self._changed(db)

    def drift_add(self, record_id: str, like: str, status: str | None = None) -> None:
        """A change keyed ``record_id`` entered by hand, copying held change ``like``."""
        now = self.clock().isoformat()
        with self._db() as db:
            row = db.execute("SELECT * FROM records WHERE record_id = ? AND result = 'ACCEPTED'",
                             (like,)).fetchone()
            if row is None:
                raise LookupError(like)
            if db.execute("SELECT 1 FROM records WHERE record_id = ?", (record_id,)).fetchone():
                raise ValueError("a change with this record id exists")
            columns = [c[1] for c in db.execute("PRAGMA table_info(records)")]
            values = dict(zip(columns, row)) | {
                "content_hash": fmt.sha256(f"drift:{record_id}".encode()), "record_id": record_id,
                "file_name": "(entered by hand)", "received_at": now, "release_at": now,
                "answered": 1, "status": status or row[columns.index("status")], "status_at": now}
            db.execute(f"INSERT INTO records ({', '.join(values)}) VALUES "
                       f"({', '.join('?' * len(values))})", list(values.values()))
            self._changed(db)

    # -- the batch job --------------------------------------------------------------------------
    def process(self) -> ProcessReport:
        """Take complete inbound files, apply their records, write the answers that are due."""
        files = records = duplicates = 0
        rejections: list[list[str]] = []
        for path in sorted(self.inbound.iterdir()):
            if not path.is_file() or not fmt.is_ready(path.name):
                continue
            files += 1
            data = path.read_bytes()
            try:
                changes = fmt.read_inbound(data)
            except fmt.BadFile as exc:
                log.warning("benefits sim: refused file %s (%s)", path.name, exc.reason)
                rejections.append(fmt.refused_file_row(path.name, exc.code, exc.reason,
                                                       self.clock()))
                self._log_file(path.name, "REJECTED", exc.code)
                self._move_processed(path)
                continue
            for record in changes:
                records += 1
                duplicates += not self._take(record, path.name)
            self._log_file(path.name, "PROCESSED", "")
            self._move_processed(path)
        written, name = self._write_due(rejections)
        if self.extract_due():
            self.publish_extract()
        return ProcessReport(files, records, duplicates, written, name)

    def _log_file(self, name: str, status: str, code: str) -> None:
        with self._db() as db:
            db.execute("INSERT INTO files VALUES (?, ?, ?, ?)",
                       (name, self.clock().isoformat(), status, code))

    def _move_processed(self, path: Path) -> None:
        target = self.processed / path.name
        if target.exists():
            target = self.processed / f"{path.stem}.{secrets.token_hex(3)}{path.suffix}"
        shutil.move(str(path), target)

    def _take(self, record: fmt.Change, file_name: str) -> bool:
        """Apply one record once; False when its content was seen before (answered again)."""
        now = self.clock()
        with self._db() as db:
            seen = db.execute("SELECT answered FROM records WHERE content_hash = ?",
                              (record.content_hash,)).fetchone()
            if seen is not None:
                if seen[0]:   # answer again (files overlap); same answer, no new effect
                    db.execute("UPDATE records SET answered = 0, release_at = ? WHERE content_hash = ?",
                               (now.isoformat(), record.content_hash))
                return False
            result, code, reason = self._decide(db, record)
            release = now + self.response_delay
            if self._is_late(record):
                release += self.late_delay
            db.execute("INSERT INTO records (content_hash, record_id, file_name, claim_ref, "
                       "change_type, result, reason_code, reason, received_at, release_at, "
                       "answered, effective, fields, status) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                       (record.content_hash, record.record_id, file_name, record.claim_ref,
                        record.change_type, result, code, reason, now.isoformat(),
                        release.isoformat(), record.effective.isoformat(),
                        fmt.canonical_json(record.fields), APPLIED if result == fmt.ACCEPTED
                        else None))
            if result == fmt.ACCEPTED:
                self._apply(db, record, now)
                self._changed(db)
        return True

    def _is_late(self, record: fmt.Change) -> bool:
        return self.late_fraction > 0 and \
            int(record.content_hash[:8], 16) / 0xFFFFFFFF < self.late_fraction

    def _decide(self, db: sqlite3.Connection, record: fmt.Change) -> tuple[str, str, str]:
        other = db.execute("SELECT 1 FROM records WHERE record_id = ?", (record.record_id,)).fetchone()
        if other is not None:
            return fmt.REJECTED, "DUPLICATE_RECORD_ID", "record id reused with different content"
        row = db.execute("SELECT status, data FROM claims WHERE claim_ref = ?",
                         (record.claim_ref,)).fetchone()
        if row is None:
            return fmt.REJECTED, "UNKNOWN_CLAIM", "claim reference not known"
        if row[0] != "live":
            return fmt.REJECTED, "CLAIM_CLOSED", "claim is not live"
        claim = json.loads(row[1])
        if record.change_type == "hb.stopped_work":
            started = claim.get("employment_started_on")
            if started and record.effective < date.fromisoformat(started):
                return fmt.REJECTED, "END_BEFORE_START", "end of work is before its start"
        if not record.change_type.startswith("hb."):
            return fmt.REJECTED, "UNKNOWN_CHANGE", "change type not known"
        return fmt.ACCEPTED, "", ""

    def _apply(self, db: sqlite3.Connection, record: fmt.Change, now: datetime) -> None:
        claim = json.loads(db.execute("SELECT data FROM claims WHERE claim_ref = ?",
                                      (record.claim_ref,)).fetchone()[0])
        effective = record.effective.isoformat()
        if record.change_type == "hb.started_work":
            claim["employment_started_on"] = effective
        elif record.change_type == "hb.stopped_work":
            claim["employment_started_on"] = None
        elif record.change_type == "hb.household_change":
            step = 1 if record.fields.get("action") == "joined" else -1
            claim["household_size"] = max(1, int(claim.get("household_size", 1)) + step)
        claim["last_change"] = {"type": record.change_type, "effective": effective,
                                "record_id": record.record_id}
        claim["pending_recalculation"] = True
        db.execute("UPDATE claims SET data = ? WHERE claim_ref = ?",
                   (json.dumps(claim), record.claim_ref))
        db.execute("INSERT INTO effects (claim_ref, record_id, change_type, applied_at) "
                   "VALUES (?, ?, ?, ?)",
                   (record.claim_ref, record.record_id, record.change_type, now.isoformat()))

    def _write_due(self, rejections: list[list[str]]) -> tuple[int, str | None]:
        now = self.clock()
        with self._db() as db:
            due = db.execute(
                "SELECT content_hash, record_id, result, claim_ref, reason_code, reason FROM records "
                "WHERE answered = 0 AND release_at <= ? ORDER BY received_at, record_id",
                (now.isoformat(),)).fetchall()
            changes = db.execute(
                "SELECT event_id, claim_ref, record_id, status, note FROM staff_changes "
                "WHERE written = 0 ORDER BY made_at").fetchall()
            if not (due or changes or rejections):
                return 0, None
            responses = [fmt.answer_row(r[1], r[0], r[2], r[3], r[4], r[5], now) for r in due]
            statuses = [fmt.staff_change_row(c[0], c[1], c[2], c[3], now, c[4]) for c in changes]
            name = f"RSP_{now:%Y%m%dT%H%M%S%f}_{secrets.token_hex(3)}{fmt.SUFFIX}"
            data = fmt.write_outbound(name.removesuffix(fmt.SUFFIX), now,
                                      rejections + responses + statuses)
            temp = self.outbound / fmt.partial_name(name)
            temp.write_bytes(data)
            os.replace(temp, self.outbound / name)
            db.executemany("UPDATE records SET answered = 1 WHERE content_hash = ?",
                           [(r[0],) for r in due])
            db.executemany("UPDATE staff_changes SET written = 1 WHERE event_id = ?",
                           [(c[0],) for c in changes])
        log.info("benefits sim: wrote %s (%d answers, %d status changes)", name, len(responses),
                 len(statuses))
        return len(responses) + len(statuses), name
