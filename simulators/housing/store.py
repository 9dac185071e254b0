"""The housing repairs simulator's state in SQLite: properties, slots, jobs and their events."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from simulators.housing import sample
from simulators.kit import Clock, SqliteState, locked

STATUSES = ("LOGGED", "APPOINTED", "IN_PROGRESS", "ON_HOLD", "NO_ACCESS", "COMPLETED", "CANCELLED")
TARGET_DAYS = {"EMERGENCY": 1, "URGENT": 7, "ROUTINE": 28}
STAFF = {"kind": "staff", "id": "repairs.officer"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS properties (uprn TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS slots (slot_id TEXT PRIMARY KEY, day TEXT NOT NULL, start TEXT NOT NULL,
    finish TEXT NOT NULL, trade TEXT NOT NULL, capacity INTEGER NOT NULL,
    booked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT UNIQUE,
    client_id TEXT NOT NULL, client_reference TEXT NOT NULL, source_reference TEXT,
    status TEXT NOT NULL, priority TEXT NOT NULL, trade TEXT NOT NULL, uprn TEXT NOT NULL,
    room TEXT, detail TEXT, description TEXT NOT NULL, access_notes TEXT, contact TEXT,
    slot_id TEXT, target_date TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    status_changed_at TEXT, UNIQUE (client_id, client_reference));
CREATE INDEX IF NOT EXISTS jobs_source ON jobs (source_reference);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL,
    type TEXT NOT NULL, status TEXT, previous_status TEXT, note TEXT, occurred_at TEXT NOT NULL,
    actor_kind TEXT NOT NULL, actor_id TEXT NOT NULL);
"""


class RepairsError(Exception):
    """A refusal in the API's terms: HTTP status, error code and the request field it names."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 existing_job_id: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.existing_job_id = existing_job_id


@dataclass(frozen=True)
class NewJob:
    client_reference: str
    priority: str
    trade: str
    uprn: str
    description: str
    source_reference: str | None = None
    room: str | None = None
    detail: str | None = None
    access_notes: str | None = None
    contact: dict[str, str] | None = None
    slot_id: str | None = None


class RepairsStore(SqliteState):
    """Thread-safe SQLite state; every time comes from ``clock``."""

    def __init__(self, db_path: str | Path, clock: Clock) -> None:
        super().__init__(db_path, _SCHEMA)
        self.clock = clock
        columns = {r["name"] for r in self.db.execute("PRAGMA table_info(jobs)")}
        if "status_changed_at" not in columns:   # a file from before the column: its jobs
            self.db.execute("ALTER TABLE jobs ADD COLUMN status_changed_at TEXT")  # list it null

    def seed_demo(self, today: date) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO properties VALUES (?)",
                           [(u,) for u in sample.properties()])
            db.executemany(
                "INSERT OR IGNORE INTO slots (slot_id, day, start, finish, trade, capacity) "
                "VALUES (:slot_id, :date, :start, :end, :trade, :capacity)", sample.slots(today))

    # -- reads ---------------------------------------------------------------------------------
    @locked
    def known_property(self, uprn: str) -> bool:
        return self.db.execute("SELECT 1 FROM properties WHERE uprn = ?", (uprn,)).fetchone() is not None

    @locked
    def job(self, job_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise RepairsError(404, "not_found", "job not found")
        return self._job(row)

    @locked
    def jobs(self, *, client_reference: str | None, source_reference: str | None, after: int,
             limit: int, updated_since: datetime | None = None,
             ) -> tuple[list[dict[str, Any]], int | None]:
        """Jobs matching the filters with seq > ``after``; and the seq to continue from.
        ``updated_since``: only jobs whose ``updated_at`` is at or after it."""
        since = updated_since.isoformat(timespec="microseconds") if updated_since else None
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE seq > ? AND (? IS NULL OR client_reference = ?) "
            "AND (? IS NULL OR source_reference = ?) AND (? IS NULL OR updated_at >= ?) "
            "ORDER BY seq LIMIT ?",
            (after, client_reference, client_reference, source_reference, source_reference,
             since, since, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [self._job(r) for r in rows], (rows[-1]["seq"] if more else None)

    @locked
    def events(self, changed_after: datetime, after_seq: int, limit: int
               ) -> tuple[list[dict[str, Any]], int | None]:
        since = changed_after.isoformat(timespec="microseconds")
        rows = self.db.execute(
            "SELECT e.*, j.client_reference FROM events e JOIN jobs j ON j.job_id = e.job_id "
            "WHERE e.occurred_at > ? AND e.seq > ? ORDER BY e.seq LIMIT ?",
            (since, after_seq, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [_event(r) for r in rows], (rows[-1]["seq"] if more else None)

    @locked
    def slots(self, trade: str, first: date, last: date) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM slots WHERE trade = ? AND day BETWEEN ? AND ? ORDER BY day, start",
            (trade, first.isoformat(), last.isoformat())).fetchall()
        return [{"slot_id": r["slot_id"], "date": r["day"], "start": r["start"], "end": r["finish"],
                 "available": r["booked"] < r["capacity"]} for r in rows]

    @locked
    def stats(self) -> dict[str, Any]:
        count = lambda sql: int(self.db.execute(sql).fetchone()[0])  # noqa: E731
        return {"effects": count("SELECT COUNT(*) FROM events WHERE actor_kind = 'api_client' "
                                 "AND type IN ('created', 'cancelled')"),
                "jobs": count("SELECT COUNT(*) FROM jobs"),
                "events": count("SELECT COUNT(*) FROM events")}

    @locked
    def detail(self, job_id: str) -> dict[str, Any]:
        """The job with its contact and events (admin only)."""
        job = self.job(job_id)
        row = self.db.execute("SELECT contact FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        job["contact"] = json.loads(row["contact"]) if row["contact"] else None
        job["events"] = [_event(r) for r in self.db.execute(
            "SELECT e.*, NULL AS client_reference FROM events e WHERE job_id = ? ORDER BY seq",
            (job_id,))]
        return job

    # -- writes --------------------------------------------------------------------------------
    @locked
    def create(self, client_id: str, new: NewJob) -> dict[str, Any]:
        if new.trade not in sample.TRADES:
            raise RepairsError(422, "unknown_trade", "no such trade", "trade")
        if not self.known_property(new.uprn):
            raise RepairsError(422, "unknown_property", "not a council-managed property",
                               "location.property_reference")
        now = self.clock.now()
        with self.transaction() as db:
            existing = db.execute("SELECT job_id FROM jobs WHERE client_id = ? AND client_reference = ?",
                                  (client_id, new.client_reference)).fetchone()
            if existing is not None:
                raise RepairsError(409, "duplicate_client_reference",
                                   "a job with this client reference exists", "client_reference",
                                   existing_job_id=existing["job_id"])
            status = "LOGGED"
            if new.slot_id:
                slot = db.execute("SELECT * FROM slots WHERE slot_id = ?", (new.slot_id,)).fetchone()
                if slot is None or slot["trade"] != new.trade or slot["booked"] >= slot["capacity"]:
                    raise RepairsError(422, "slot_unavailable", "the slot cannot be booked",
                                       "appointment.slot_id")
                db.execute("UPDATE slots SET booked = booked + 1 WHERE slot_id = ?", (new.slot_id,))
                status = "APPOINTED"
            stamp = now.isoformat(timespec="microseconds")
            target = (now + timedelta(days=TARGET_DAYS[new.priority])).date().isoformat()
            seq = db.execute(
                "INSERT INTO jobs (client_id, client_reference, source_reference, status, priority, "
                "trade, uprn, room, detail, description, access_notes, contact, slot_id, "
                "target_date, created_at, updated_at, status_changed_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (client_id, new.client_reference, new.source_reference, status, new.priority,
                 new.trade, new.uprn, new.room, new.detail, new.description, new.access_notes,
                 json.dumps(new.contact) if new.contact else None, new.slot_id, target, stamp,
                 stamp, stamp)).lastrowid
            job_id = f"JOB-{seq:06d}"
            db.execute("UPDATE jobs SET job_id = ? WHERE seq = ?", (job_id, seq))
            self._event(db, job_id, "created", status, None, None, stamp, "api_client", client_id)
        return self.job(job_id)

    @locked
    def cancel(self, job_id: str, client_id: str, reason: str | None) -> dict[str, Any]:
        with self.transaction() as db:
            job = self.job(job_id)
            if job["status"] == "CANCELLED":
                return job
            if job["status"] == "COMPLETED":
                raise RepairsError(409, "job_closed", "the job is completed", "status")
            stamp = self.clock.stamp()
            self._set_status(db, job, "CANCELLED", stamp)
            if job.get("appointment"):
                db.execute("UPDATE slots SET booked = MAX(0, booked - 1) WHERE slot_id = ?",
                           (job["appointment"]["slot_id"],))
            self._event(db, job_id, "cancelled", "CANCELLED", job["status"], reason, stamp,
                        "api_client", client_id)
        return self.job(job_id)

    @locked
    def staff_change(self, job_id: str, status: str, note: str | None) -> dict[str, Any]:
        """A repairs officer changes a job's status (LookupError / ValueError for the kit)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}")
        try:
            with self.transaction() as db:
                job = self.job(job_id)
                stamp = self.clock.stamp()
                self._set_status(db, job, status, stamp)
                self._event(db, job_id, "status_changed", status, job["status"], note, stamp,
                            STAFF["kind"], STAFF["id"])
        except RepairsError as exc:
            raise LookupError(job_id) from exc
        return self.job(job_id)

    # -- drift on purpose (admin; no event: behind the hub's back) ----------------------------
    DRIFT_FIELDS = ("priority", "trade", "uprn", "room", "detail", "description", "access_notes")

    @locked
    def drift_change(self, job_id: str, status: str | None,
                     fields: dict[str, Any]) -> dict[str, Any]:
        """Change a job's status or values with no job event (a data fix nobody announces)."""
        unknown = sorted(set(fields) - set(self.DRIFT_FIELDS))
        if unknown or (status is not None and status not in STATUSES):
            raise ValueError(f"unknown fields {unknown} or status; fields: {list(self.DRIFT_FIELDS)}")
        try:
            self.job(job_id)
        except RepairsError as exc:
            raise LookupError(job_id) from exc
        with self.transaction() as db:
            stamp = self.clock.stamp()
            for name, value in fields.items():   # names checked against DRIFT_FIELDS above
                db.execute(f"UPDATE jobs SET {name} = ?, updated_at = ? WHERE job_id = ?",
                           (value, stamp, job_id))
            if status:
                self._set_status(db, {"id": job_id}, status, stamp)
        return self.job(job_id)

    @locked
    def drift_delete(self, job_id: str) -> dict[str, Any]:
        with self.transaction() as db:
            if db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,)).rowcount == 0:
                raise LookupError(job_id)
            db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
        return {"reference": job_id, "deleted": True}

    @locked
    def drift_add(self, client_reference: str, like: str, status: str | None) -> dict[str, Any]:
        """A job keyed ``client_reference`` made by hand (a copy of job ``like``), no event."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}")
        with self.transaction() as db:
            model = db.execute("SELECT * FROM jobs WHERE job_id = ?", (like,)).fetchone()
            if model is None:
                raise LookupError(like)
            if db.execute("SELECT 1 FROM jobs WHERE client_id = ? AND client_reference = ?",
                          (model["client_id"], client_reference)).fetchone() is not None:
                raise ValueError("a job with this client reference exists")
            stamp = self.clock.stamp()
            seq = db.execute(
                "INSERT INTO jobs (client_id, client_reference, source_reference, status, priority, "
                "trade, uprn, room, detail, description, access_notes, contact, slot_id, "
                "target_date, created_at, updated_at, status_changed_at) SELECT client_id, ?, "
                "source_reference, ?, priority, trade, uprn, room, detail, description, "
                "access_notes, contact, NULL, target_date, ?, ?, ? FROM jobs WHERE job_id = ?",
                (client_reference, status or model["status"], stamp, stamp, stamp,
                 like)).lastrowid
            job_id = f"JOB-{seq:06d}"
            db.execute("UPDATE jobs SET job_id = ? WHERE seq = ?", (job_id, seq))
        return self.job(job_id) | {"reference": job_id}

    @staticmethod
    def _set_status(db: sqlite3.Connection, job: dict[str, Any], status: str, stamp: str) -> None:
        """The job's status set; ``status_changed_at`` moves only when the status differs."""
        db.execute("UPDATE jobs SET status_changed_at = CASE WHEN status = ? "
                   "THEN status_changed_at ELSE ? END, status = ?, updated_at = ? WHERE job_id = ?",
                   (status, stamp, status, stamp, job["id"]))

    @staticmethod
    def _event(db: sqlite3.Connection, job_id: str, kind: str, status: str | None,
               previous: str | None, note: str | None, stamp: str, actor_kind: str,
               actor_id: str) -> None:
        db.execute("INSERT INTO events (job_id, type, status, previous_status, note, occurred_at, "
                   "actor_kind, actor_id) VALUES (?,?,?,?,?,?,?,?)",
                   (job_id, kind, status, previous, note, stamp, actor_kind, actor_id))

    def _job(self, row: sqlite3.Row) -> dict[str, Any]:
        appointment = None
        if row["slot_id"]:
            slot = self.db.execute("SELECT * FROM slots WHERE slot_id = ?", (row["slot_id"],)).fetchone()
            if slot is not None:
                appointment = {"slot_id": slot["slot_id"], "date": slot["day"],
                               "start": slot["start"], "end": slot["finish"]}
        location = {"property_reference": row["uprn"], "room": row["room"], "detail": row["detail"]}
        return {"id": row["job_id"], "client_reference": row["client_reference"],
                "source_reference": row["source_reference"], "status": row["status"],
                "priority": row["priority"], "trade": row["trade"],
                "location": {k: v for k, v in location.items() if v is not None},
                "description": row["description"], "access_notes": row["access_notes"],
                "target_date": row["target_date"], "appointment": appointment,
                "created_at": row["created_at"], "updated_at": row["updated_at"],
                "status_changed_at": row["status_changed_at"],
                "links": {"self": f"/api/v2/jobs/{row['job_id']}"}}


def _event(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": f"EV-{row['seq']:08d}", "job_id": row["job_id"], "type": row["type"],
            "client_reference": row["client_reference"], "status": row["status"],
            "previous_status": row["previous_status"], "note": row["note"],
            "occurred_at": row["occurred_at"],
            "actor": {"kind": row["actor_kind"], "id": row["actor_id"]}}
