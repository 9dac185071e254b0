"""The Revenues simulator's state in SQLite: accounts, properties, requests and staff changes.

One connection guarded by a lock (the app serves requests from a thread pool). Each create is
idempotent on its ClientReference: the same reference returns the existing request, applies nothing.
Bank details are not stored (only that a mandate exists and its payment day).
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ctax_accounts (
    account_ref TEXT PRIMARY KEY, property_ref TEXT, adults INTEGER NOT NULL, band TEXT NOT NULL,
    hold_moves INTEGER NOT NULL DEFAULT 0, balance_pence INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'LIVE', liable_from TEXT, moved_out_on TEXT,
    single_person_discount INTEGER NOT NULL DEFAULT 0, direct_debit_day INTEGER
);
CREATE TABLE IF NOT EXISTS nndr_accounts (
    account_ref TEXT PRIMARY KEY, rateable_value INTEGER NOT NULL, relief TEXT,
    status TEXT NOT NULL DEFAULT 'LIVE'
);
CREATE TABLE IF NOT EXISTS properties (property_ref TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT UNIQUE, client_reference TEXT NOT NULL UNIQUE,
    request_type TEXT NOT NULL, account_ref TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
    balance_pence INTEGER, created_at TEXT NOT NULL, details TEXT, updated_at TEXT
);
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT NOT NULL, status TEXT NOT NULL, note TEXT,
    changed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_at ON changes (changed_at);
"""

#: Annual Council Tax by band, in pence (fictitious council).
BAND_CHARGE_PENCE = {"A": 1_350_00, "B": 1_575_00, "C": 1_800_00, "D": 2_025_00, "E": 2_475_00,
                     "F": 2_925_00, "G": 3_375_00, "H": 4_050_00}
#: Small business rate relief applies up to this rateable value (pounds).
SBRR_MAX_RATEABLE_VALUE = 15_000
#: The request values an admin drift may change (``drift_change``).
DRIFT_FIELDS = frozenset({"AccountRef", "MovedOn", "PropertyRef", "EffectiveFrom",
                          "AdultsResident", "DiscountType", "PaymentDay", "ReliefType"})


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """Sortable fixed-width UTC text (microseconds), so SQL string order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


class UnknownRecord(LookupError):
    """No such account, property or request."""


class ReferenceClash(ValueError):
    """A ClientReference already used for a different kind of request."""


@dataclass(frozen=True)
class Applied:
    """What a create did: the request's status, a reason (for HELD) and the new balance."""

    status: str = "COMPLETED"
    reason: str | None = None
    balance_pence: int | None = None


class RevenuesStore:
    """SQLite-backed Revenues back office (thread-safe)."""

    def __init__(self, db_path: Path) -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
            for column in ("details", "updated_at"):   # files made before these existed
                if column not in columns:
                    self._db.execute(f"ALTER TABLE requests ADD COLUMN {column} TEXT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- seeding ---------------------------------------------------------------------------------
    def seed(self, ctax: Iterable[Mapping[str, Any]], nndr: Iterable[Mapping[str, Any]],
             properties: Iterable[str]) -> None:
        """Insert accounts and properties that are not there yet."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO ctax_accounts (account_ref, property_ref, adults, band,"
                " hold_moves, balance_pence) VALUES (?, ?, ?, ?, ?, ?)",
                [(a["account_ref"], a["property_ref"], int(a["adults"]), a["band"],
                  int(bool(a.get("hold_moves"))), int(a["balance_pence"])) for a in ctax])
            self._db.executemany(
                "INSERT OR IGNORE INTO nndr_accounts (account_ref, rateable_value) VALUES (?, ?)",
                [(a["account_ref"], int(a["rateable_value"])) for a in nndr])
            self._db.executemany("INSERT OR IGNORE INTO properties (property_ref) VALUES (?)",
                                 [(p,) for p in properties])

    # -- reads -----------------------------------------------------------------------------------
    def ctax_account(self, account_ref: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM ctax_accounts WHERE account_ref = ?",
                                   (account_ref,)).fetchone()
        return dict(row) if row else None

    def nndr_account(self, account_ref: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM nndr_accounts WHERE account_ref = ?",
                                   (account_ref,)).fetchone()
        return dict(row) if row else None

    def property_exists(self, property_ref: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM properties WHERE property_ref = ?",
                                    (property_ref,)).fetchone() is not None

    def find_requests(self, client_reference: str) -> list[dict[str, Any]]:
        """Requests whose ClientReference is ``client_reference`` or starts with it plus ``/``."""
        prefix = client_reference + "/"
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM requests WHERE client_reference = ?"
                " OR substr(client_reference, 1, ?) = ? ORDER BY id",
                (client_reference, len(prefix), prefix)).fetchall()
        return [dict(r) for r in rows]

    def request(self, reference: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM requests WHERE reference = ?",
                                   (reference,)).fetchone()
        return dict(row) if row else None

    def list_requests(self, *, client_reference: str | None, changed_from: datetime | None,
                      changed_to: datetime | None, after: str | None,
                      limit: int) -> tuple[list[dict[str, Any]], bool]:
        """One page of requests in Reference order (keyset after ``after``), filtered by client
        reference (exact, or its steps) and a window on the last change; and whether more follow."""
        where, params = ["reference IS NOT NULL"], []
        if client_reference is not None:
            prefix = client_reference + "/"
            where.append("(client_reference = ? OR substr(client_reference, 1, ?) = ?)")
            params += [client_reference, len(prefix), prefix]
        if changed_from is not None:
            where.append("COALESCE(updated_at, created_at) >= ?")
            params.append(iso(changed_from))
        if changed_to is not None:
            where.append("COALESCE(updated_at, created_at) < ?")
            params.append(iso(changed_to))
        if after is not None:
            where.append("reference > ?")
            params.append(after)
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM requests WHERE {' AND '.join(where)}"
                                    " ORDER BY reference LIMIT ?", (*params, limit + 1)).fetchall()
        return [dict(r) for r in rows[:limit]], len(rows) > limit

    # -- drift on purpose (admin): changes nobody records in ChangesGet -------------------------
    def drift_change(self, reference: str, status: str | None,
                     details: Mapping[str, Any]) -> dict[str, Any]:
        """Change a request behind the hub's back (a data fix): its status and/or detail values
        (``MovedOn``, ``EffectiveFrom``, ``AccountRef``...), with no ChangesGet entry."""
        unknown = sorted(set(details) - DRIFT_FIELDS)
        if unknown:
            raise ValueError(f"unknown request fields {unknown}; known: {sorted(DRIFT_FIELDS)}")
        with self._lock:
            row = self.request(reference)
            if row is None:
                raise UnknownRecord(reference)
            current = json.loads(row["details"] or "{}")
            account_ref = details.get("AccountRef", row["account_ref"])
            current.update({k: v for k, v in details.items() if k != "AccountRef"})
            self._db.execute("UPDATE requests SET status = ?, details = ?, account_ref = ?,"
                             " updated_at = ? WHERE reference = ?",
                             (status or row["status"], json.dumps(current, sort_keys=True),
                              account_ref, iso(utc_now()), reference))
        return self.request(reference) or {}

    def drift_delete(self, reference: str) -> dict[str, Any]:
        """Delete a request (and its staff changes) as if it had never been made."""
        with self._lock:
            if self.request(reference) is None:
                raise UnknownRecord(reference)
            self._db.execute("DELETE FROM changes WHERE reference = ?", (reference,))
            self._db.execute("DELETE FROM requests WHERE reference = ?", (reference,))
        return {"reference": reference, "deleted": True}

    def drift_add(self, client_reference: str, like: str, status: str | None) -> dict[str, Any]:
        """A new request made by hand with ``client_reference`` (a hub key), copying ``like``."""
        with self._lock:
            model = self.request(like)
            if model is None:
                raise UnknownRecord(like)
            if self._db.execute("SELECT 1 FROM requests WHERE client_reference = ?",
                                (client_reference,)).fetchone() is not None:
                raise ReferenceClash(client_reference)
            now = iso(utc_now())
            cursor = self._db.execute(
                "INSERT INTO requests (client_reference, request_type, account_ref, status,"
                " reason, balance_pence, created_at, details, updated_at)"
                " VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?)",
                (client_reference, model["request_type"], model["account_ref"],
                 status or model["status"], now, model["details"], now))
            reference = f"RQ{cursor.lastrowid:08d}"
            self._db.execute("UPDATE requests SET reference = ? WHERE id = ?",
                             (reference, cursor.lastrowid))
        return self.request(reference) or {}

    def changes_since(self, since: datetime) -> list[dict[str, Any]]:
        """Staff changes strictly after ``since``, oldest first, with their request's fields."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.reference, c.status, c.note, c.changed_at, r.client_reference,"
                " r.request_type FROM changes c JOIN requests r ON r.reference = c.reference"
                " WHERE c.changed_at > ? ORDER BY c.changed_at, c.id", (iso(since),)).fetchall()
        return [dict(r) for r in rows]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            by_type = dict(self._db.execute(
                "SELECT request_type, count(*) FROM requests GROUP BY request_type").fetchall())
            held = self._db.execute(
                "SELECT count(*) FROM requests WHERE status = 'HELD'").fetchone()[0]
            changes = self._db.execute("SELECT count(*) FROM changes").fetchone()[0]
        return {"effects": sum(by_type.values()), "requests": by_type, "held": held,
                "staff_changes": changes}

    # -- writes ----------------------------------------------------------------------------------
    def create(self, client_reference: str, request_type: str, account_ref: str,
               apply: Callable[[sqlite3.Connection], Applied],
               details: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """The request for ``client_reference``: the existing one (False) or a new one after
        ``apply`` made its change (True). An exception from ``apply`` rolls everything back."""
        with self._lock:
            existing = self._db.execute("SELECT * FROM requests WHERE client_reference = ?",
                                        (client_reference,)).fetchone()
            if existing is not None:
                if existing["request_type"] != request_type:
                    raise ReferenceClash(client_reference)
                return dict(existing), False
            self._db.execute("BEGIN IMMEDIATE")
            try:
                applied = apply(self._db)
                cursor = self._db.execute(
                    "INSERT INTO requests (client_reference, request_type, account_ref, status,"
                    " reason, balance_pence, created_at, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (client_reference, request_type, account_ref, applied.status, applied.reason,
                     applied.balance_pence, iso(utc_now()),
                     json.dumps(dict(details or {}), sort_keys=True)))
                reference = f"RQ{cursor.lastrowid:08d}"
                self._db.execute("UPDATE requests SET reference = ? WHERE id = ?",
                                 (reference, cursor.lastrowid))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            row = self._db.execute("SELECT * FROM requests WHERE reference = ?",
                                   (reference,)).fetchone()
        return dict(row), True

    def set_status(self, reference: str, status: str, note: str | None) -> dict[str, Any]:
        """A staff change to a request: new status, recorded for ChangesGet."""
        with self._lock:
            if self.request(reference) is None:
                raise UnknownRecord(reference)
            now = iso(utc_now())
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE requests SET status = ?, updated_at = ?"
                                 " WHERE reference = ?", (status, now, reference))
                cursor = self._db.execute(
                    "INSERT INTO changes (reference, status, note, changed_at) VALUES (?, ?, ?, ?)",
                    (reference, status, note, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return {"change_id": f"CH{cursor.lastrowid:08d}", "reference": reference, "status": status,
                "changed_at": now}


def rebilled_balance(account: Mapping[str, Any], on: date) -> int:
    """The account's new balance: the days it is liable in the financial year holding ``on``."""
    year_start = date(on.year if on.month >= 4 else on.year - 1, 4, 1)
    year_end = date(year_start.year + 1, 3, 31)
    days_in_year = (year_end - year_start).days + 1
    annual = BAND_CHARGE_PENCE.get(account["band"], BAND_CHARGE_PENCE["D"])
    if account.get("single_person_discount"):
        annual = annual * 3 // 4
    if account["status"] == "LIVE":
        liable_days = (year_end - max(on, year_start)).days + 1
    else:  # moved out of the area: final bill up to the move
        liable_days = (min(on, year_end) - year_start).days + 1
    return annual * max(0, liable_days) // days_in_year
