"""The CRM simulator's data: cases, their change feed and applied write-backs (one SQLite file)."""
from __future__ import annotations

import base64
import binascii
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    crm_id TEXT PRIMARY KEY,
    case_type TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    change_seq INTEGER NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'new',
    backoffice_reference TEXT,
    backoffice_system TEXT,
    notes TEXT NOT NULL DEFAULT '[]',
    channel TEXT,
    created_at TEXT,
    state_updated_at TEXT
);
CREATE TABLE IF NOT EXISTS writebacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    crm_id TEXT NOT NULL REFERENCES cases(crm_id),
    status TEXT NOT NULL,
    note TEXT NOT NULL,
    backoffice_reference TEXT,
    backoffice_system TEXT,
    applied_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS writebacks_by_case ON writebacks(crm_id);
"""


class UnknownCase(KeyError):
    """No case with that id."""


class KeyConflict(ValueError):
    """The idempotency key was already used for another case."""


class BadCursor(ValueError):
    """The cursor was not issued by this CRM."""


#: The CRM-side status words a case may hold: ``new`` until the hub first writes back, then one of
#: the write-back statuses (docs/crm.md).
CASE_STATUSES = ("new", "in_progress", "completed", "needs_review", "rejected")


@dataclass(frozen=True)
class PutResult:
    case: dict[str, Any]
    created: bool
    changed: bool


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def encode_cursor(seq: int) -> str:
    """An opaque cursor for a position in the change sequence."""
    return base64.urlsafe_b64encode(f"crm-seq:{seq}".encode()).decode().rstrip("=")


def encode_state_cursor(crm_id: str) -> str:
    """An opaque cursor after ``crm_id`` in the case-state listing (keyset on ``crm_id``)."""
    return base64.urlsafe_b64encode(f"crm-state:{crm_id}".encode()).decode().rstrip("=")


def decode_state_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, crm_id = raw.split(":", 1)
        if prefix != "crm-state" or not crm_id:
            raise ValueError("not a case-state cursor")
        return crm_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("cursor") from exc


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, seq = raw.split(":", 1)
        if prefix != "crm-seq" or not seq.isdigit():
            raise ValueError("not a CRM cursor")
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("cursor") from exc


class CrmStore:
    """Thread-safe access to the simulator's SQLite file (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(cases)")}
        for column in ("channel", "created_at", "state_updated_at"):   # files made before these existed
            if column not in columns:
                self._db.execute(f"ALTER TABLE cases ADD COLUMN {column} TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- cases ---------------------------------------------------------------------------------

    def put_case(self, crm_id: str, case_type: str, data: dict[str, Any], *,
                 channel: str | None = None, created_at: str | None = None) -> PutResult:
        """Create a case, or bump its version when its type or data changed.

        ``channel`` is how the customer came (telephone, face_to_face, web, email); ``created_at``
        backdates a new case (sample history), which is then also its first ``updated_at``.
        """
        with self._tx() as db:
            row = db.execute("SELECT * FROM cases WHERE crm_id = ?", (crm_id,)).fetchone()
            if row is not None and row["case_type"] == case_type and \
                    row["data"] == _canonical(data):
                return PutResult(_case_json(row), created=False, changed=False)
            seq = db.execute("SELECT COALESCE(MAX(change_seq), 0) + 1 FROM cases").fetchone()[0]
            if row is None:
                created = created_at or _now()
                db.execute("INSERT INTO cases (crm_id, case_type, data, version, updated_at,"
                           " change_seq, channel, created_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                           (crm_id, case_type, _canonical(data), created, seq, channel, created))
            else:
                db.execute("UPDATE cases SET case_type = ?, data = ?, version = version + 1,"
                           " updated_at = ?, change_seq = ? WHERE crm_id = ?",
                           (case_type, _canonical(data), _now(), seq, crm_id))
            new = db.execute("SELECT * FROM cases WHERE crm_id = ?", (crm_id,)).fetchone()
            return PutResult(_case_json(new), created=row is None, changed=True)

    def get_case(self, crm_id: str) -> dict[str, Any]:
        """The case with its CRM-side status, back-office reference and notes."""
        with self._lock:
            row = self._db.execute("SELECT * FROM cases WHERE crm_id = ?", (crm_id,)).fetchone()
        if row is None:
            raise UnknownCase(crm_id)
        return _case_json(row, detail=True)

    def changes(self, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Cases changed after ``cursor`` in change order, and the cursor after the page."""
        after = decode_cursor(cursor) if cursor else 0
        with self._lock:
            rows = self._db.execute("SELECT * FROM cases WHERE change_seq > ? ORDER BY change_seq"
                                    " LIMIT ?", (after, limit)).fetchall()
        if not rows:
            return [], cursor
        return [_case_json(r) for r in rows], encode_cursor(rows[-1]["change_seq"])

    # -- write-backs ---------------------------------------------------------------------------

    def apply_update(self, crm_id: str, key: str, status: str, note: str,
                     backoffice_reference: str | None, backoffice_system: str | None) -> bool:
        """Apply a write-back once per key; False when the key was applied before."""
        with self._tx() as db:
            case = db.execute("SELECT notes FROM cases WHERE crm_id = ?", (crm_id,)).fetchone()
            if case is None:
                raise UnknownCase(crm_id)
            seen = db.execute("SELECT crm_id FROM writebacks WHERE idempotency_key = ?",
                              (key,)).fetchone()
            if seen is not None:
                if seen["crm_id"] != crm_id:
                    raise KeyConflict(key)
                return False
            applied_at = _now()
            db.execute("INSERT INTO writebacks (idempotency_key, crm_id, status, note,"
                       " backoffice_reference, backoffice_system, applied_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (key, crm_id, status, note, backoffice_reference, backoffice_system,
                        applied_at))
            notes = json.loads(case["notes"])
            if note:
                notes.append({"at": applied_at, "text": note})
            db.execute("UPDATE cases SET status = ?, notes = ?, state_updated_at = ?,"
                       " backoffice_reference = COALESCE(?, backoffice_reference),"
                       " backoffice_system = COALESCE(?, backoffice_system) WHERE crm_id = ?",
                       (status, json.dumps(notes), applied_at, backoffice_reference,
                        backoffice_system, crm_id))
            return True

    # -- case states (what reconciliation reads) ------------------------------------------------

    def case_states(self, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """One page of every case's state in ascending ``crm_id`` order after ``cursor`` (keyset),
        and the cursor of the next page (None after the last)."""
        after = decode_state_cursor(cursor) if cursor else None
        with self._lock:
            rows = self._db.execute(
                "SELECT crm_id, status, backoffice_reference, backoffice_system,"
                " COALESCE(state_updated_at, updated_at) AS state_at FROM cases"
                " WHERE (? IS NULL OR crm_id > ?) ORDER BY crm_id LIMIT ?",
                (after, after, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        states = [{"crm_id": r["crm_id"], "status": r["status"],
                   "backoffice_reference": r["backoffice_reference"],
                   "backoffice_system": r["backoffice_system"], "updated_at": r["state_at"]}
                  for r in rows]
        return states, (encode_state_cursor(rows[-1]["crm_id"]) if more else None)

    # -- drift on purpose (admin) ---------------------------------------------------------------

    def lose_writebacks(self, crm_id: str) -> int:
        """The CRM loses every write-back the hub made to a case (a restore from an old backup, a
        bad data fix): status back to ``new``, back-office reference and system gone, and the
        idempotency keys forgotten, so delivering the same write-back again applies it again.
        Returns how many write-backs were lost."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM cases WHERE crm_id = ?", (crm_id,)).fetchone() is None:
                raise UnknownCase(crm_id)
            lost = db.execute("DELETE FROM writebacks WHERE crm_id = ?", (crm_id,)).rowcount
            db.execute("UPDATE cases SET status = 'new', backoffice_reference = NULL,"
                       " backoffice_system = NULL, state_updated_at = ? WHERE crm_id = ?",
                       (_now(), crm_id))
            return lost

    def set_status(self, crm_id: str, status: str) -> None:
        """An agent changes a case's status by hand (no write-back, no new version)."""
        if status not in CASE_STATUSES:
            raise ValueError(f"unknown status; known: {list(CASE_STATUSES)}")
        with self._tx() as db:
            changed = db.execute("UPDATE cases SET status = ?, state_updated_at = ?"
                                 " WHERE crm_id = ?", (status, _now(), crm_id)).rowcount
            if not changed:
                raise UnknownCase(crm_id)

    def updates(self, crm_id: str) -> list[dict[str, Any]]:
        """The write-backs applied to a case, oldest first."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM cases WHERE crm_id = ?", (crm_id,)).fetchone() \
                    is None:
                raise UnknownCase(crm_id)
            rows = self._db.execute("SELECT idempotency_key, status, note, backoffice_reference,"
                                    " backoffice_system, applied_at FROM writebacks"
                                    " WHERE crm_id = ? ORDER BY id", (crm_id,)).fetchall()
        return [dict(r) for r in rows]

    def stats(self) -> dict[str, Any]:
        """Counts for the admin page and tests."""
        with self._lock:
            cases = self._db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
            applied = self._db.execute("SELECT COUNT(*) FROM writebacks").fetchone()[0]
            by_status = self._db.execute("SELECT status, COUNT(*) FROM writebacks"
                                         " GROUP BY status").fetchall()
            by_type = self._db.execute("SELECT case_type, COUNT(*) FROM cases"
                                       " GROUP BY case_type").fetchall()
            case_status = self._db.execute("SELECT status, COUNT(*) FROM cases"
                                           " GROUP BY status").fetchall()
        return {"cases": cases, "writebacks_applied": applied,
                "writebacks_by_status": {r[0]: r[1] for r in by_status},
                "by_case_type": {r[0]: r[1] for r in by_type},
                "cases_by_status": {r[0]: r[1] for r in case_status}}


def _case_json(row: sqlite3.Row, *, detail: bool = False) -> dict[str, Any]:
    case = {"crm_id": row["crm_id"], "version": row["version"], "case_type": row["case_type"],
            "updated_at": row["updated_at"], "data": json.loads(row["data"])}
    if row["channel"]:
        case["channel"] = row["channel"]
    if row["created_at"]:
        case["created_at"] = row["created_at"]
    if detail:
        case.update(status=row["status"], backoffice_reference=row["backoffice_reference"],
                    backoffice_system=row["backoffice_system"], notes=json.loads(row["notes"]))
    return case
