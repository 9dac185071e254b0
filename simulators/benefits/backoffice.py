"""The back-office side of the Benefits file exchange, working directly on the exchange folders.

``process()`` is one run of the back office's batch job: it takes every complete file in the inbound
folder (temporary names are ignored), verifies its trailer, applies each record once (records are
de-duplicated by content hash because files overlap), and writes the answers that are due, plus any
staff changes, as one response file in the outbound folder. State lives in SQLite.
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
"""


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
        self.db_path = Path(db_path)
        self.response_delay = timedelta(seconds=response_delay_seconds)
        self.late_fraction = late_fraction
        self.late_delay = timedelta(seconds=late_delay_seconds)
        self.clock = clock

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create the folders and the database (idempotent)."""
        for folder in (self.inbound, self.outbound, self.archive, self.processed):
            folder.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)

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
        with self._db() as db:
            db.execute("INSERT INTO staff_changes VALUES (?, ?, ?, ?, ?, ?, 0)",
                       (event_id, claim_ref, record_id, status, note, self.clock().isoformat()))
        return event_id

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
            db.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                       (record.content_hash, record.record_id, file_name, record.claim_ref,
                        record.change_type, result, code, reason, now.isoformat(),
                        release.isoformat()))
            if result == fmt.ACCEPTED:
                self._apply(db, record, now)
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
