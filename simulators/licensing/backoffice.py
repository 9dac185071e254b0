"""The simulated licensing system: vendor-like tables, reference data and staff actions."""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (CHAR, Column, Date, DateTime, Engine, ForeignKey, Index, Integer, MetaData,
                        String, Table, Text, UniqueConstraint, create_engine, func, insert, select,
                        update)
from sqlalchemy.dialects import mysql

from simulators.licensing import sample

#: Licence types the system is installed with: code, description, minimum age, fee (pence).
LICENCE_TYPES: list[tuple[str, str, int | None, int]] = [
    ("PREM", "Premises licence", 18, 31500),
    ("HCD", "Hackney carriage driver licence", 21, 25000),
    ("PHD", "Private hire driver licence", 21, 25000),
    ("STR", "Street trading consent", 17, 40000),
    ("ANI", "Animal activity licence", 18, 30000),
]
SEQUENCE_NAME = "LICAPP"
RECEIVED = "RECEIVED"
DECISIONS = ("GRANTED", "REFUSED", "FURTHER_INFO")

_MICROSECONDS = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _keyed(*columns: Any) -> list[Any]:
    """Columns labelled by their default (key) name whatever they are called in the database."""
    return [c.label(c.key) for c in columns]


def utc_now() -> datetime:
    """Naive UTC now: the system stores UTC date-times without a zone."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class LicensingBackOffice:
    """The licensing system's database at ``url``.

    ``rename`` maps a default physical name (table or column, e.g. ``EXT_REF``) to another one,
    to stand in for a council whose installation names things differently.
    """

    def __init__(self, url: str, *, rename: Mapping[str, str] | None = None,
                 engine: Engine | None = None) -> None:
        self.url = url
        self._rename = dict(rename or {})
        self.engine = engine or create_engine(url, pool_pre_ping=True, hide_parameters=True)
        self.metadata = MetaData()
        self._define()

    # -- schema ---------------------------------------------------------------------------------
    def _n(self, name: str) -> str:
        return self._rename.get(name, name)

    def _col(self, name: str, type_: Any, *args: Any, **kwargs: Any) -> Column:
        return Column(self._n(name), type_, *args, key=name, **kwargs)

    def _define(self) -> None:
        n, c, md = self._n, self._col, self.metadata
        self.sequence = Table(n("LIC_SEQUENCE"), md,
                              c("SEQ_NAME", String(20), primary_key=True),
                              c("NEXT_VALUE", Integer, nullable=False))
        self.licence_type = Table(n("LIC_TYPE_REF"), md,
                                  c("LIC_TYPE", String(8), primary_key=True),
                                  c("DESCRIPTION", String(80), nullable=False),
                                  c("MIN_AGE", Integer), c("FEE_PENCE", Integer, nullable=False),
                                  c("ACTIVE", CHAR(1), nullable=False, default="Y"))
        self.premises = Table(n("LIC_PREMISES"), md,
                              c("PREMISES_REF", String(20), primary_key=True),
                              c("PREMISES_NAME", String(120), nullable=False),
                              c("ADDR_LINE1", String(100)), c("TOWN", String(60)),
                              c("POSTCODE", String(10)), c("UPRN", String(12)))
        self.party = Table(n("LIC_PARTY"), md,
                           c("PARTY_ID", Integer, primary_key=True, autoincrement=True),
                           c("FULL_NAME", String(120), nullable=False),
                           c("DATE_OF_BIRTH", Date), c("EMAIL", String(254)),
                           c("PHONE", String(30)),
                           c("ADDR_LINE1", String(100)), c("ADDR_LINE2", String(100)),
                           c("TOWN", String(60)), c("POSTCODE", String(10)),
                           c("DRIVING_LICENCE_NO", String(16)), c("CREATED", _MICROSECONDS))
        ref = f"{n('LIC_TYPE_REF')}.{n('LIC_TYPE')}"
        self.application = Table(
            n("LIC_APPLICATION"), md,
            c("APP_REF", String(20), primary_key=True),
            c("EXT_REF", String(64)),
            c("SOURCE_REF", String(64)),
            c("LIC_TYPE", String(8), ForeignKey(ref), nullable=False),
            c("APPLICANT_NAME", String(120), nullable=False),
            c("PARTY_ID", Integer, ForeignKey(f"{n('LIC_PARTY')}.{n('PARTY_ID')}")),
            c("PREMISES_REF", String(20),
              ForeignKey(f"{n('LIC_PREMISES')}.{n('PREMISES_REF')}")),
            c("ACTIVITY", String(200)), c("SITE_DESC", String(200)),
            c("PAYMENT_REF", String(40)), c("FEE_PENCE", Integer),
            c("STATUS", String(20), nullable=False),
            c("RECEIVED_DATE", _MICROSECONDS), c("DECISION_DATE", Date),
            c("LAST_UPDATED", _MICROSECONDS, nullable=False),
            c("DECISION_NOTE", Text),
            UniqueConstraint("EXT_REF", name=f"UQ_{n('LIC_APPLICATION')}_EXT_REF"),
        )
        Index(f"IX_{n('LIC_APPLICATION')}_UPDATED", self.application.c.LAST_UPDATED)

    def install(self) -> None:
        """Create the tables (if missing), the licence types and the application sequence."""
        self.metadata.create_all(self.engine, checkfirst=True)
        with self.engine.begin() as conn:
            known = set(conn.execute(select(self.licence_type.c.LIC_TYPE)).scalars())
            for code, description, min_age, fee in LICENCE_TYPES:
                if code not in known:
                    conn.execute(insert(self.licence_type).values(
                        LIC_TYPE=code, DESCRIPTION=description, MIN_AGE=min_age,
                        FEE_PENCE=fee, ACTIVE="Y"))
            if conn.execute(select(self.sequence.c.SEQ_NAME)
                            .where(self.sequence.c.SEQ_NAME == SEQUENCE_NAME)).first() is None:
                conn.execute(insert(self.sequence).values(SEQ_NAME=SEQUENCE_NAME, NEXT_VALUE=1))

    def seed_reference(self, premises: Iterable[Mapping[str, str]] | None = None) -> int:
        """Add premises to the system's premises list (default: the demo list); returns how many."""
        rows = list(premises if premises is not None else sample.premises())
        with self.engine.begin() as conn:
            known = set(conn.execute(select(self.premises.c.PREMISES_REF)).scalars())
            new = [r for r in rows if r["premises_ref"] not in known]
            for r in new:
                conn.execute(insert(self.premises).values(
                    PREMISES_REF=r["premises_ref"], PREMISES_NAME=r["name"],
                    ADDR_LINE1=r.get("line1"), TOWN=r.get("town"), POSTCODE=r.get("postcode"),
                    UPRN=r.get("uprn")))
        return len(new)

    def seed_demo(self) -> None:
        """Install and add the demo reference data."""
        self.install()
        self.seed_reference()

    def set_licence_type(self, code: str, **values: Any) -> None:
        """Change a licence type's rules (``FEE_PENCE``, ``MIN_AGE``, ``ACTIVE``) as an admin."""
        with self.engine.begin() as conn:
            conn.execute(update(self.licence_type)
                         .where(self.licence_type.c.LIC_TYPE == code).values(**values))

    def drop(self) -> None:
        self.metadata.drop_all(self.engine, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- what happened --------------------------------------------------------------------------
    def applications_created(self) -> int:
        """Rows in the application table (the effects the hub caused)."""
        with self.engine.connect() as conn:
            count = select(func.count()).select_from(self.application)
            return int(conn.execute(count).scalar_one())

    def find_application(self, app_ref: str) -> dict[str, Any] | None:
        """One application with its applicant (keys are the default physical names)."""
        a, p = self.application, self.party
        stmt = (select(*_keyed(*a.c, p.c.FULL_NAME, p.c.DATE_OF_BIRTH, p.c.EMAIL,
                               p.c.DRIVING_LICENCE_NO))
                .select_from(a.outerjoin(p, a.c.PARTY_ID == p.c.PARTY_ID))
                .where(a.c.APP_REF == app_ref))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return dict(row) if row is not None else None

    def applications(self, status: str | None = None) -> list[dict[str, Any]]:
        a = self.application
        stmt = select(*_keyed(a.c.APP_REF, a.c.EXT_REF, a.c.LIC_TYPE, a.c.STATUS, a.c.LAST_UPDATED))
        if status is not None:
            stmt = stmt.where(a.c.STATUS == status)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt.order_by(a.c.APP_REF)).mappings()]

    # -- staff actions --------------------------------------------------------------------------
    def decide(self, app_ref: str, decision: str, *, note: str | None = None,
               at: datetime | None = None) -> datetime:
        """A licensing officer records a decision; returns the new LAST_UPDATED (naive UTC)."""
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}")
        when = at or utc_now()
        decided = when.date() if decision != "FURTHER_INFO" else None
        with self.engine.begin() as conn:
            result = conn.execute(update(self.application)
                                  .where(self.application.c.APP_REF == app_ref)
                                  .values(STATUS=decision, DECISION_DATE=decided,
                                          LAST_UPDATED=when, DECISION_NOTE=note))
        if result.rowcount != 1:
            raise KeyError(f"no application {app_ref}")
        return when

    def decide_pending(self) -> list[tuple[str, str]]:
        """Decide every application still RECEIVED by a fixed rule (most granted); returns them."""
        decided = []
        for i, row in enumerate(self.applications(RECEIVED)):
            decision = ("REFUSED" if i % 5 == 4 else "FURTHER_INFO" if i % 5 == 3 else "GRANTED")
            self.decide(row["APP_REF"], decision)
            decided.append((row["APP_REF"], decision))
        return decided

    # -- drift on purpose (a data fix straight in the tables: LAST_UPDATED left alone) ---------
    #: Application columns ``drift_change`` may set (default physical names).
    DRIFT_COLUMNS = ("APPLICANT_NAME", "PREMISES_REF", "ACTIVITY", "SITE_DESC", "PAYMENT_REF",
                     "LIC_TYPE")

    def drift_change(self, app_ref: str, status: str | None = None,
                     fields: Mapping[str, Any] | None = None) -> None:
        """Change an application's status or columns with no trace the status sync can see."""
        values = dict(fields or {})
        unknown = sorted(set(values) - set(self.DRIFT_COLUMNS))
        if unknown:
            raise ValueError(f"unknown columns {unknown}; known: {list(self.DRIFT_COLUMNS)}")
        if status is not None:
            values["STATUS"] = status
        if not values:
            raise ValueError("nothing to change")
        with self.engine.begin() as conn:
            result = conn.execute(update(self.application)
                                  .where(self.application.c.APP_REF == app_ref).values(**values))
        if result.rowcount != 1:
            raise LookupError(app_ref)

    def drift_delete(self, app_ref: str) -> None:
        """Delete an application (its applicant row stays, as a careless fix would leave it)."""
        with self.engine.begin() as conn:
            result = conn.execute(self.application.delete()
                                  .where(self.application.c.APP_REF == app_ref))
        if result.rowcount != 1:
            raise LookupError(app_ref)

    def drift_add(self, ext_ref: str, like: str, status: str | None = None) -> str:
        """An application keyed ``ext_ref`` typed in by hand (a copy of ``like``); its APP_REF."""
        a = self.application
        with self.engine.begin() as conn:
            row = conn.execute(select(*_keyed(*a.c)).where(a.c.APP_REF == like)).mappings().first()
            if row is None:
                raise LookupError(like)
            app_ref = f"{row['APP_REF'][:12]}-D{hashlib.sha256(ext_ref.encode()).hexdigest()[:5]}"
            values = dict(row) | {"APP_REF": app_ref, "EXT_REF": ext_ref,
                                  "PAYMENT_REF": None, "STATUS": status or row["STATUS"],
                                  "LAST_UPDATED": utc_now()}
            conn.execute(insert(a).values(**values))
        return app_ref

    @contextlib.contextmanager
    def sequence_locked(self) -> Iterator[None]:
        """Hold the row lock on the application sequence (an officer mid-edit) until the block ends.

        On SQLite this holds the database write lock.
        """
        with self.engine.connect() as conn:
            conn.execute(update(self.sequence).where(self.sequence.c.SEQ_NAME == SEQUENCE_NAME)
                         .values(NEXT_VALUE=self.sequence.c.NEXT_VALUE))
            try:
                yield
            finally:
                conn.rollback()
