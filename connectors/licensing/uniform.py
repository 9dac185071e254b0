"""Licensing connector: writes licence applications into an Idox Uniform style database.

Each application is one transaction in the licensing system's own tables (named by the configured
``SchemaMap``): look up the command key in the external-reference column (idempotency), apply the
system's rules from its own reference tables (licence types, premises), take the next number from
its sequence table, insert the applicant (party) and the application. A unique constraint on the
external reference is the last line against a concurrent duplicate.

Decisions made by licensing staff (granted, refused, further information) are read back by the
``LAST_UPDATED`` column in ``fetch_updates``.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, SecretStr, field_validator, model_validator
from sqlalchemy import ColumnElement, Connection, Engine, false, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from tenacity import RetryCallState, Retrying

from connectors.base import (BackOfficeRecord, Command, Connector, ConnectorConfig, Outcome,
                             OutcomeStatus, Update)
from connectors.errors import (ConnectorError, PermanentError, Rejected, error_class_name,
                               scrubbed)
from connectors.fields import is_reference, is_status_word
from connectors.licensing.operations import (OPERATIONS, AnimalEstablishmentLicence,
                                             PremisesLicence, StreetTradingConsent)
from connectors.licensing.schema import SchemaMap, build_tables
from connectors.transports.sql import classified, classify, make_engine

log = logging.getLogger(__name__)

#: Applications written per transaction by a batch submit.
BATCH_ROWS = 200
#: The largest page ``records()`` reads in one SELECT.
MAX_RECORDS_PAGE = 5000
#: Collations that order text by code point (as Python sorts ``str``), per dialect, so keyset
#: pages and ``records_sorted_by_key`` mean the same on every database.
_BINARY_COLLATION = {"postgresql": "C", "mysql": "utf8mb4_bin", "mariadb": "utf8mb4_bin"}

#: Operation -> the licensing system's licence-type code (``LIC_TYPE``).
DEFAULT_LICENCE_TYPES: dict[str, str] = {
    "licence.premises": "PREM",
    "licence.taxi_driver": "HCD",
    "licence.private_hire_driver": "PHD",
    "licence.street_trading": "STR",
    "licence.animal_establishment": "ANI",
}
#: Licensing status word -> CRM status (the hub's convention: ``closed`` or ``open``).
DEFAULT_CRM_STATUSES: dict[str, str] = {
    "GRANTED": "closed",
    "REFUSED": "closed",
    "FURTHER_INFO": "open",
}
_LABELS = {
    "licence.premises": "Premises licence",
    "licence.taxi_driver": "Hackney carriage driver licence",
    "licence.private_hire_driver": "Private hire driver licence",
    "licence.street_trading": "Street trading consent",
    "licence.animal_establishment": "Animal activity licence",
}
_STATUS_WORDS = {"GRANTED": "granted", "REFUSED": "refused",
                 "FURTHER_INFO": "further information requested"}


class UniformConfig(ConnectorConfig):
    """Settings of the licensing database connection (Airflow connection ``licensing_uniform``).

    Either ``url`` (a SQLAlchemy URL without password, e.g.
    ``postgresql+psycopg2://lic@db/uniform``) or ``driver`` + ``host``/``port``/``username``/
    ``database`` from the connection's standard fields. The password always comes from the
    connection's password field.
    """

    connection_fields: ClassVar[Mapping[str, str]] = {
        "host": "host", "port": "port", "login": "username", "password": "password",
        "schema": "database",
    }

    url: str | None = None
    driver: str = "postgresql+psycopg2"
    host: str | None = None
    port: int | None = None
    username: str | None = None
    database: str | None = None
    password: SecretStr | None = None
    schema_map: SchemaMap = SchemaMap()
    """Physical table/column names and database schema (see ``connectors.licensing.schema``)."""
    connect_timeout_seconds: float = 10.0
    lock_timeout_seconds: float = 5.0
    """How long a statement waits for a row lock before failing transiently (MariaDB: >= 1 s)."""
    pool_size: int = 5
    licence_types: dict[str, str] = DEFAULT_LICENCE_TYPES
    """Operation -> licence-type code in the licensing system."""
    received_status: str = "RECEIVED"
    """Status of a new application; rows still in it are not reported as updates."""
    crm_statuses: dict[str, str] = DEFAULT_CRM_STATUSES
    sequence_name: str = "LICAPP"
    """Row of the sequence table that numbers applications."""
    app_ref_format: str = "{yy}/{number:05d}/{lic_type}"
    """How the system's application reference is formed (``yy``, ``number``, ``lic_type``)."""
    backoffice_timezone: str = "UTC"
    """Zone of the system's naive date-times (``LAST_UPDATED``...), e.g. ``Europe/London``."""
    fetch_limit: int = 1000

    @field_validator("url")
    @classmethod
    def _url_without_password(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            parsed = make_url(value)
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several types here
            raise ValueError("not a SQLAlchemy URL") from exc
        if parsed.password:
            raise ValueError("put the password in the connection's password field, not the url")
        return value

    @field_validator("licence_types")
    @classmethod
    def _known_operations(cls, value: dict[str, str]) -> dict[str, str]:
        missing = sorted(set(OPERATIONS) - set(value))
        if missing:
            raise ValueError(f"no licence type for operations {missing}")
        return value

    @field_validator("backoffice_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("app_ref_format")
    @classmethod
    def _ref_format(cls, value: str) -> str:
        try:
            value.format(yy="26", year=2026, number=1, lic_type="PREM")
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError("may use only {yy}, {year}, {number} and {lic_type}") from exc
        return value

    @model_validator(mode="after")
    def _somewhere_to_connect(self) -> "UniformConfig":
        if self.url is None and not self.host:
            raise ValueError("url or host is required")
        return self

    def sqlalchemy_url(self) -> URL:
        """The database URL (without password)."""
        if self.url is not None:
            return make_url(self.url)
        return URL.create(self.driver, username=self.username, host=self.host, port=self.port,
                          database=self.database)


class UniformConnector(Connector[UniformConfig]):
    """Licence applications into the licensing system's database; decisions read back."""

    system = "licensing_uniform"
    Config = UniformConfig
    operations = OPERATIONS
    lookup_kinds = ("premises", "application")
    records_sorted_by_key = True

    def __init__(self, config: UniformConfig) -> None:
        super().__init__(config)
        self.tables = build_tables(config.schema_map)
        self._zone = ZoneInfo(config.backoffice_timezone)
        self._engine: Engine | None = None

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine, created on first use (creating it does no I/O)."""
        if self._engine is None:
            cfg = self.config
            self._engine = make_engine(cfg.sqlalchemy_url(), password=cfg.password,
                                       connect_timeout=cfg.connect_timeout_seconds,
                                       lock_timeout=cfg.lock_timeout_seconds,
                                       statement_timeout=cfg.timeout_seconds,
                                       pool_size=cfg.pool_size)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def retrying(self) -> Retrying:
        """The base policy, logging each transient failure (code only) before it waits."""
        return super().retrying().copy(before_sleep=self._log_retry)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        command = state.args[0] if state.args else None
        what = (getattr(command, "key", None)
                or (f"a batch of {len(command)}" if isinstance(command, Sequence) else "call"))
        log.warning("%s: transient failure %s on %s (attempt %d), retrying",
                    self.system_id(), getattr(error, "code", None), what, state.attempt_number)

    def _now(self) -> datetime:
        """Now, as the licensing system stores date-times (naive, in its zone)."""
        return datetime.now(self._zone).replace(tzinfo=None)

    def _to_backoffice(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(self._zone).replace(tzinfo=None)

    def _to_utc(self, stored: datetime) -> datetime:
        if stored.tzinfo is None:
            stored = stored.replace(tzinfo=self._zone)
        return stored.astimezone(timezone.utc)

    # -- contract -------------------------------------------------------------------------------
    def check(self) -> None:
        """Connect, and read every mapped table and column once (a wrong map fails here)."""
        t = self.tables
        with classified(f"{self.system_id()} check"), self.engine.connect() as conn:
            for table in (t.application, t.party, t.premises, t.licence_type, t.sequence):
                conn.execute(select(*table.c).where(false()))
            found = conn.execute(select(t.sequence.c.next_value)
                                 .where(t.sequence.c.seq_name == self.config.sequence_name)).first()
        if found is None:
            raise PermanentError(f"{self.system_id()}: sequence row {self.config.sequence_name!r} "
                                 "is missing", code="no-sequence")

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        """A batch is written in one transaction with a few statements per table (its look-ups,
        rule checks and application numbers taken together); a batch of one, or a batch that
        meets a concurrent writer of the same key, goes command by command."""
        if len(commands) < 2:
            return self.submit_each(commands, self._apply)
        outcomes: dict[int, Outcome] = {}
        valid: list[tuple[int, Command, BaseModel]] = []
        for index, command in enumerate(commands):
            try:
                valid.append((index, command, self.validate(command)))
            except Rejected as exc:
                outcomes[index] = _rejected_outcome(command, exc)
        for start in range(0, len(valid), BATCH_ROWS):
            chunk = valid[start:start + BATCH_ROWS]
            try:
                done = self.retrying()(self._apply_batch, chunk)
            except _ConcurrentWriter:
                done = dict(zip((i for i, _, _ in chunk),
                                self.submit_each([c for _, c, _ in chunk], self._apply),
                                strict=True))
            except Exception as exc:   # after retries, or a defect: this chunk and the rest wait
                stop = self._batch_stopped(exc)
                for i, c, _ in chunk:
                    outcomes[i] = Outcome(key=c.key, status=OutcomeStatus.RETRY,
                                          message=stop.message,
                                          error_class=error_class_name(stop), code=stop.code)
                for i, c, _ in valid[start + BATCH_ROWS:]:
                    outcomes[i] = Outcome(key=c.key, status=OutcomeStatus.RETRY,
                                          message="not sent: batch stopped early",
                                          error_class=error_class_name(stop), code=stop.code)
                break
            outcomes.update(done)
        return [outcomes[i] for i in range(len(commands))]

    def _batch_stopped(self, exc: Exception) -> ConnectorError:
        """The classified error that stops a batch (as ``submit_each`` would for one command): a
        security-flagged one is reported; anything unclassified is a defect, its cause scrubbed."""
        if isinstance(exc, ConnectorError):
            if exc.security:
                self.flag(exc, "submit")
            return exc
        error = PermanentError(f"{self.system_id()}.submit: the connector failed unexpectedly "
                               f"({type(exc).__name__}); this is a defect to report",
                               code="internal")
        error.__cause__ = scrubbed(exc)
        return error

    def _apply_batch(self, chunk: Sequence[tuple[int, Command, BaseModel]]) -> dict[int, Outcome]:
        """One transaction for the chunk: look up every key, check the rules for the new ones in
        order (as one by one would, a payment used earlier in the chunk included), take their
        numbers with one sequence update and insert parties and applications together."""
        action = f"{self.system_id()} batch of {len(chunk)}"
        try:
            with self.engine.begin() as conn:
                return self._write_batch(conn, chunk)
        except sa_exc.IntegrityError as exc:   # someone wrote one of our keys meanwhile
            error: Exception = _ConcurrentWriter()
            cause = scrubbed(exc)
        except (sa_exc.SQLAlchemyError, OSError) as exc:   # driver messages quote values
            error, cause = classify(exc, action), scrubbed(exc)
        raise error from cause

    def _write_batch(self, conn: Connection,
                     chunk: Sequence[tuple[int, Command, BaseModel]]) -> dict[int, Outcome]:
        t = self.tables
        app = t.application
        existing = self._find_many(conn, [c.key for _, c, _ in chunk])
        wanted = [(i, c, m) for i, c, m in chunk if c.key not in existing]
        codes = {self.config.licence_types[c.operation] for _, c, _ in wanted}
        rules = {row["lic_type"]: row for row in conn.execute(
            select(*_keyed(*t.licence_type.c)).where(t.licence_type.c.lic_type.in_(codes))
        ).mappings()} if codes else {}
        premises_refs = {getattr(m, "premises_ref", None) for _, _, m in wanted} - {None}
        premises = set(conn.scalars(select(t.premises.c.premises_ref).where(
            t.premises.c.premises_ref.in_(premises_refs)))) if premises_refs else set()
        payment_refs = {getattr(m, "payment_ref", None) for _, _, m in wanted} - {None}
        paid: dict[str, list[tuple[str, str]]] = {}
        if payment_refs:
            for ref, app_ref, ext_ref in conn.execute(
                    select(app.c.payment_ref, app.c.app_ref, app.c.ext_ref)
                    .where(app.c.payment_ref.in_(payment_refs))):
                paid.setdefault(ref, []).append((app_ref, ext_ref))
        outcomes: dict[int, Outcome] = {}
        for index, command, _ in chunk:
            if command.key in existing:
                log.info("%s: %s already present as %s", self.system_id(), command.key,
                         existing[command.key]["app_ref"])
                outcomes[index] = self._settled(command, existing[command.key], already=True)
        accepted: list[tuple[int, Command, BaseModel, str, int]] = []
        payers: dict[str, int] = {}
        """Payment reference -> the index of the application in this batch it pays for."""
        paid_in_batch: list[tuple[int, Command, int]] = []
        for index, command, model in wanted:
            lic_type = self.config.licence_types[command.operation]
            try:
                fee = self._rules_hold(command, model, lic_type, rules.get(lic_type), premises)
                payment_ref = getattr(model, "payment_ref", None)
                if payment_ref:
                    used = [a for a, e in paid.get(payment_ref, []) if e != command.key]
                    if used:
                        raise self._payment_used(command, used[0])
                    if payment_ref in payers:   # refused below, once that application has its ref
                        paid_in_batch.append((index, command, payers[payment_ref]))
                        continue
                    payers[payment_ref] = index
            except Rejected as exc:
                outcomes[index] = _rejected_outcome(command, exc)
                continue
            accepted.append((index, command, model, lic_type, fee))
        if accepted:
            outcomes.update(self._insert_batch(conn, accepted))
        for index, command, payer in paid_in_batch:
            outcomes[index] = _rejected_outcome(
                command, self._payment_used(command, outcomes[payer].reference or ""))
        return outcomes

    def _payment_used(self, command: Command, app_ref: str) -> Rejected:
        return self._reject(command, f"{command.operation}: field payment_ref: payment already "
                            f"used for application {app_ref}", "payment-already-used",
                            "payment_ref")

    def _insert_batch(self, conn: Connection,
                      accepted: Sequence[tuple[int, Command, BaseModel, str, int]]
                      ) -> dict[int, Outcome]:
        t = self.tables
        first = self._next_number(conn, count=len(accepted))
        now = self._now()
        parties = []
        for _, command, model, _, _ in accepted:
            applicant = model.applicant  # type: ignore[attr-defined]
            address = applicant.address
            parties.append({
                "full_name": applicant.name, "date_of_birth": applicant.date_of_birth,
                "email": applicant.email, "phone": applicant.phone,
                "addr_line1": address.line1 if address else None,
                "addr_line2": (address.line2 or None) if address else None,
                "town": address.town if address else None,
                "postcode": address.postcode if address else None,
                "driving_licence_no": getattr(model, "driving_licence_number", None),
                "created": now})
        # The new parties' ids, in the order of ``parties``. SQLAlchemy guarantees the order where
        # the backend lets it batch (PostgreSQL, MariaDB); on SQLite (one writer, holding the lock
        # here) new row ids ascend in insert order, so sorting them gives the same.
        sqlite = conn.dialect.name == "sqlite"
        party_ids = list(conn.scalars(insert(t.party).returning(
            t.party.c.party_id, sort_by_parameter_order=not sqlite), parties))
        if sqlite:
            party_ids.sort()
        rows = []
        outcomes: dict[int, Outcome] = {}
        for offset, ((index, command, model, lic_type, fee), party_id) in enumerate(
                zip(accepted, party_ids, strict=True)):
            app_ref = self.config.app_ref_format.format(yy=f"{now.year % 100:02d}", year=now.year,
                                                        number=first + offset, lic_type=lic_type)
            row = self._application_row(command, model, lic_type, fee, party_id, app_ref, now)
            rows.append(row)
            log.info("%s: %s created %s", self.system_id(), command.key, app_ref)
            outcomes[index] = self._settled(command, row, already=False)
        conn.execute(insert(t.application), rows)
        return outcomes

    def _apply(self, command: Command) -> Outcome:
        model = self.validate(command)
        action = f"{command.operation} {command.key}"
        try:
            with self.engine.begin() as conn:
                existing = self._find(conn, command.key)
                if existing is not None:
                    log.info("%s: %s already present as %s", self.system_id(), command.key,
                             existing["app_ref"])
                    return self._confirmed(command, existing, already=True)
                row = self._create(conn, command, model)
        except sa_exc.IntegrityError as exc:
            error, cause, look_again = classify(exc, action), scrubbed(exc), True
        except (sa_exc.SQLAlchemyError, OSError) as exc:   # driver messages quote values
            error, cause, look_again = classify(exc, action), scrubbed(exc), False
        else:
            log.info("%s: %s created %s", self.system_id(), command.key, row["app_ref"])
            return self._confirmed(command, row, already=False)
        if look_again:   # someone created the same key between our look and our insert
            existing = self._find_now(command.key)
            if existing is not None:
                return self._confirmed(command, existing, already=True)
        raise error from cause

    def _confirmed(self, command: Command, row: Mapping[str, Any], *, already: bool) -> Outcome:
        if not is_reference(row["app_ref"]):   # never confirm with a reference that is not one
            raise Rejected(f"{command.operation}: the licensing system holds the application but "
                           "its reference is empty or unreadable; a licensing officer must check "
                           "it", code="bad-reference", field="app_ref")
        return Outcome(key=command.key, status=OutcomeStatus.CONFIRMED, reference=row["app_ref"],
                       message=("already received" if already else "application received"),
                       details={"licence_type": row["lic_type"], "status": row["status"],
                                "fee_pence": row["fee_pence"]})

    def _settled(self, command: Command, row: Mapping[str, Any], *, already: bool) -> Outcome:
        """``_confirmed`` for one command of a batch: a row whose reference is unreadable is that
        command's refusal (as one by one), not the batch's."""
        try:
            return self._confirmed(command, row, already=already)
        except Rejected as exc:
            return _rejected_outcome(command, exc)

    def _find(self, conn: Connection, key: str) -> Mapping[str, Any] | None:
        app = self.tables.application
        return conn.execute(select(*_keyed(app.c.app_ref, app.c.lic_type, app.c.status,
                                           app.c.fee_pence))
                            .where(app.c.ext_ref == key)).mappings().first()

    def _find_many(self, conn: Connection, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        app = self.tables.application
        return {row["ext_ref"]: row for row in conn.execute(
            select(*_keyed(app.c.ext_ref, app.c.app_ref, app.c.lic_type, app.c.status,
                           app.c.fee_pence)).where(app.c.ext_ref.in_(list(keys)))).mappings()}

    def _find_now(self, key: str) -> Mapping[str, Any] | None:
        with classified(f"look up {key}"), self.engine.connect() as conn:
            return self._find(conn, key)

    def _create(self, conn: Connection, command: Command, model: BaseModel) -> dict[str, Any]:
        t = self.tables
        lic_type = self.config.licence_types[command.operation]
        fee = self._check_rules(conn, command, model, lic_type)
        number = self._next_number(conn)
        now = self._now()
        applicant = model.applicant  # type: ignore[attr-defined]
        address = applicant.address
        party = conn.execute(insert(t.party).values(
            full_name=applicant.name, date_of_birth=applicant.date_of_birth,
            email=applicant.email, phone=applicant.phone,
            addr_line1=address.line1 if address else None,
            addr_line2=(address.line2 or None) if address else None,
            town=address.town if address else None, postcode=address.postcode if address else None,
            driving_licence_no=getattr(model, "driving_licence_number", None), created=now))
        party_id = party.inserted_primary_key[0]
        app_ref = self.config.app_ref_format.format(yy=f"{now.year % 100:02d}", year=now.year,
                                                    number=number, lic_type=lic_type)
        row = self._application_row(command, model, lic_type, fee, party_id, app_ref, now)
        conn.execute(insert(t.application).values(**row))
        return row

    def _application_row(self, command: Command, model: BaseModel, lic_type: str, fee: int,
                         party_id: int, app_ref: str, now: datetime) -> dict[str, Any]:
        return {"app_ref": app_ref, "ext_ref": command.key, "source_ref": command.case_ref[:64],
                "lic_type": lic_type, "applicant_name": model.applicant.name,  # type: ignore[attr-defined]
                "party_id": party_id, "premises_ref": getattr(model, "premises_ref", None),
                "activity": _activity(model), "site_desc": getattr(model, "pitch", None),
                "payment_ref": getattr(model, "payment_ref", None), "fee_pence": fee,
                "status": self.config.received_status, "received_date": now,
                "decision_date": None, "last_updated": now}

    def _check_rules(self, conn: Connection, command: Command, model: BaseModel,
                     lic_type: str) -> int:
        """The licensing system's rules, from its own tables; returns the fee due (pence)."""
        t = self.tables
        rules = conn.execute(select(*_keyed(*t.licence_type.c))
                             .where(t.licence_type.c.lic_type == lic_type)).mappings().first()
        premises_ref = getattr(model, "premises_ref", None)
        known = set()
        if premises_ref is not None and conn.execute(
                select(t.premises.c.premises_ref)
                .where(t.premises.c.premises_ref == premises_ref)).first() is not None:
            known.add(premises_ref)
        fee = self._rules_hold(command, model, lic_type, rules, known)
        payment_ref = getattr(model, "payment_ref", None)
        if payment_ref:
            app = t.application
            used = conn.execute(select(app.c.app_ref)
                                .where(app.c.payment_ref == payment_ref,
                                       app.c.ext_ref != command.key).limit(1)).first()
            if used is not None:
                raise self._payment_used(command, used[0])
        return fee

    def _rules_hold(self, command: Command, model: BaseModel, lic_type: str,
                    rules: Mapping[str, Any] | None, known_premises: set[str]) -> int:
        """The licence-type, premises, age and fee rules (from the system's own tables, read
        by the caller); returns the fee due (pence) or raises ``Rejected`` naming the field."""
        op = command.operation
        if rules is None or str(rules["active"] or "N").upper() != "Y":
            raise self._reject(command, f"{op}: licence type {lic_type} is not open for "
                               "applications in the licensing system", "licence-type-closed", None)
        premises_ref = getattr(model, "premises_ref", None)
        if premises_ref is not None and premises_ref not in known_premises:
            raise self._reject(command, f"{op}: field premises_ref: no such premises in the "
                               "licensing system", "unknown-premises", "premises_ref")
        min_age = rules["min_age"]
        dob = model.applicant.date_of_birth  # type: ignore[attr-defined]
        if min_age and dob is not None and _age(dob, self._now().date()) < int(min_age):
            raise self._reject(command, f"{op}: field applicant.date_of_birth: applicant is under "
                               f"the minimum age ({min_age}) for this licence",
                               "under-minimum-age", "applicant.date_of_birth")
        fee = int(rules["fee_pence"] or 0)
        if fee > 0 and not getattr(model, "payment_ref", None):
            raise self._reject(command, f"{op}: field payment_ref: a fee is due for this licence "
                               "and no payment reference was given", "payment-required",
                               "payment_ref")
        return fee

    def _reject(self, command: Command, message: str, code: str, field: str | None) -> Rejected:
        log.info("%s: %s rejected: %s", self.system_id(), command.key, code)
        return Rejected(message, code=code, field=field)

    def _next_number(self, conn: Connection, count: int = 1) -> int:
        """Take the next ``count`` application numbers; returns the first (the update holds the
        row lock to commit)."""
        seq = self.tables.sequence
        where = seq.c.seq_name == self.config.sequence_name
        result = conn.execute(update(seq).where(where).values(next_value=seq.c.next_value + count))
        if result.rowcount != 1:
            raise PermanentError(f"{self.system_id()}: sequence row "
                                 f"{self.config.sequence_name!r} is missing", code="no-sequence")
        return int(conn.execute(select(seq.c.next_value).where(where)).scalar_one()) - count

    def fetch_updates(self, since: datetime) -> list[Update]:
        """Status changes after ``since`` to applications the hub sent, oldest first.

        At most ``fetch_limit`` rows, except that a full page is completed with every other row
        sharing its last ``LAST_UPDATED``: the hub's cursor becomes that moment, so a row left
        behind at it would never be read again.
        """
        app = self.tables.application
        columns = _keyed(app.c.app_ref, app.c.ext_ref, app.c.lic_type, app.c.status,
                         app.c.decision_date, app.c.last_updated)
        ours = (app.c.status != self.config.received_status, app.c.ext_ref.is_not(None))
        stmt = (select(*columns)
                .where(app.c.last_updated > self._to_backoffice(since), *ours)
                .order_by(app.c.last_updated, app.c.app_ref)
                .limit(self.config.fetch_limit))
        with classified(f"{self.system_id()} fetch updates"), self.engine.connect() as conn:
            rows = list(conn.execute(stmt).mappings().all())
            if rows and len(rows) >= self.config.fetch_limit:
                last = rows[-1]
                rows += conn.execute(
                    select(*columns)
                    .where(app.c.last_updated == last["last_updated"],
                           app.c.app_ref > last["app_ref"], *ours)
                    .order_by(app.c.app_ref)).mappings().all()
        updates = []
        for number, row in enumerate(rows, start=1):
            problem = _row_problem(row)
            if problem is not None:
                ref = row["app_ref"] if is_reference(row["app_ref"]) else f"#{number}"
                self.set_aside(operation="fetch_updates", entry=f"application {ref}",
                               field=problem[0], reason=problem[1], code="bad-value")
                continue
            updates.append(self._update(row))
        return updates

    def _update(self, row: Mapping[str, Any]) -> Update:
        changed_at = self._to_utc(row["last_updated"])
        status = str(row["status"]).strip().upper()
        return Update(system=self.system_id(),
                      update_id=f"{row['app_ref']}|{changed_at.isoformat()}|{status}",
                      reference=row["app_ref"], status=status, changed_at=changed_at,
                      key=row["ext_ref"], crm_status=self.config.crm_statuses.get(status),
                      note=self._note(row))

    def _note(self, row: Mapping[str, Any]) -> str:
        kinds = {code: op for op, code in self.config.licence_types.items()}
        label = _LABELS.get(kinds.get(row["lic_type"], ""), "Licence")
        word = _STATUS_WORDS.get(str(row["status"]), str(row["status"]).lower())
        when = row["decision_date"]
        on = f" on {_as_date(when).isoformat()}" if when else ""
        return f"{label} application {row['app_ref']}: {word}{on}"

    def snapshot(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """Status of the applications with these command keys (no personal data)."""
        app = self.tables.application
        found: dict[str, Mapping[str, Any]] = {}
        with classified(f"{self.system_id()} snapshot"), self.engine.connect() as conn:
            usable = [k for k in keys if _usable_key(k)]   # others cannot be held: not found
            for start in range(0, len(usable), 500):
                chunk = usable[start:start + 500]
                rows = conn.execute(select(*_keyed(app.c.ext_ref, app.c.app_ref, app.c.lic_type,
                                                   app.c.status, app.c.decision_date,
                                                   app.c.last_updated))
                                    .where(app.c.ext_ref.in_(chunk))).mappings().all()
                for row in rows:
                    problem = _row_problem(row)
                    if problem is not None:
                        self.set_aside(operation="snapshot", entry=f"application for {row['ext_ref']}",
                                       field=problem[0], reason=problem[1], code="bad-value")
                        continue
                    found[row["ext_ref"]] = {
                        "reference": row["app_ref"], "licence_type": row["lic_type"],
                        "status": row["status"], "decision_date": row["decision_date"],
                        "changed_at": self._to_utc(row["last_updated"])}
        return found

    def records(self, *, since: datetime | None = None,
                page_size: int = 500) -> Iterator[BackOfficeRecord]:
        """Every application carrying a hub key (``EXT_REF``), in ascending key order, read by a
        keyed SELECT with keyset pagination (``EXT_REF > last key``, binary collation, one short
        read per page: nothing held open between pages), joined to its applicant (party) row for
        the fields the hub sent. ``since``: only rows whose ``LAST_UPDATED`` is at or after it.
        A row the hub cannot read is set aside (reported) and the read goes on."""
        size = self.page_size_for(page_size, maximum=MAX_RECORDS_PAGE)
        t = self.tables
        app, party = t.application, t.party
        key_col = app.c.ext_ref
        collation = _BINARY_COLLATION.get(self.engine.dialect.name)
        ordered = key_col.collate(collation) if collation else key_col
        kinds = {code: op for op, code in self.config.licence_types.items()}
        columns = [*_keyed(app.c.ext_ref, app.c.app_ref, app.c.lic_type, app.c.status,
                           app.c.applicant_name, app.c.premises_ref, app.c.activity,
                           app.c.site_desc, app.c.payment_ref, app.c.last_updated),
                   *[c.label(f"party_{c.key}") for c in (
                       party.c.date_of_birth, party.c.email, party.c.phone, party.c.addr_line1,
                       party.c.addr_line2, party.c.town, party.c.postcode,
                       party.c.driving_licence_no)]]
        base = (select(*columns).select_from(app.outerjoin(party, party.c.party_id == app.c.party_id))
                .where(key_col.is_not(None)).order_by(ordered).limit(size))
        if since is not None:
            base = base.where(app.c.last_updated >= self._to_backoffice(since))
        last: str | None = None
        while True:
            stmt = base if last is None else base.where(ordered > last)
            with classified(f"{self.system_id()} records"), self.engine.connect() as conn:
                rows = list(conn.execute(stmt).mappings().all())
            for row in rows:
                record = self._record(row, kinds)
                if record is not None:
                    yield record
            if len(rows) < size:
                return
            last = rows[-1]["ext_ref"]

    def _record(self, row: Mapping[str, Any], kinds: Mapping[str, str]) -> BackOfficeRecord | None:
        problem = _row_problem(row)
        if problem is not None:
            ref = row["app_ref"] if is_reference(row["app_ref"]) else "(no reference)"
            self.set_aside(operation="records", entry=f"application {ref}", field=problem[0],
                           reason=problem[1], code="bad-value")
            return None
        status = str(row["status"]).strip().upper()
        operation = kinds.get(row["lic_type"])
        return BackOfficeRecord(
            reference=row["app_ref"], key=row["ext_ref"], status=status,
            fields=_application_fields(row, operation), crm_status=self.config.crm_statuses.get(status),
            changed_at=self._to_utc(row["last_updated"]), operation=operation)

    def lookup(self, kind: str, params: Mapping[str, Any]) -> Any:
        """``premises`` (``premises_ref``) -> the premises record or None;
        ``application`` (``reference`` or ``key``) -> its status or None."""
        t = self.tables
        if kind == "premises":
            stmt = select(*_keyed(*t.premises.c)).where(
                t.premises.c.premises_ref == _param(params, "premises_ref", 20))
        elif kind == "application":
            app = t.application
            where = (app.c.app_ref == _param(params, "reference", 20) if params.get("reference")
                     else app.c.ext_ref == _param(params, "key", 64))
            stmt = select(*_keyed(app.c.app_ref, app.c.ext_ref, app.c.lic_type, app.c.status,
                                  app.c.decision_date)).where(where)
        else:
            return super().lookup(kind, params)
        with classified(f"{self.system_id()} lookup {kind}"), self.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return dict(row) if row is not None else None


def _application_fields(row: Mapping[str, Any], operation: str | None) -> dict[str, Any]:
    """The application's values named as in the operation's payload model (``flat_fields``
    form), limited to the fields that model has; none for an unknown licence type."""
    model = OPERATIONS.get(operation or "")
    if model is None:
        return {}
    born = row["party_date_of_birth"]
    fields: dict[str, Any] = {
        "applicant.name": row["applicant_name"],
        "applicant.date_of_birth": _as_date(born).isoformat() if born is not None else None,
        "applicant.email": row["party_email"], "applicant.phone": row["party_phone"],
        "premises_ref": row["premises_ref"], "payment_ref": row["payment_ref"],
        "driving_licence_number": row["party_driving_licence_no"],
    }
    if row["party_addr_line1"] is None and row["party_town"] is None:
        fields["applicant.address"] = None
    else:
        fields.update({"applicant.address.line1": row["party_addr_line1"],
                       "applicant.address.town": row["party_town"],
                       "applicant.address.postcode": row["party_postcode"]})
        if row["party_addr_line2"] is not None:
            fields["applicant.address.line2"] = row["party_addr_line2"]
    if model is PremisesLicence:
        fields["activities"] = [a for a in (row["activity"] or "").split(",") if a]
    elif model is AnimalEstablishmentLicence:
        fields["activity"] = row["activity"]
    elif model is StreetTradingConsent:
        fields["commodities"] = row["activity"]
        fields["pitch"] = row["site_desc"]
    top = set(model.model_fields)
    return {name: value for name, value in fields.items() if name.split(".")[0] in top}


def _row_problem(row: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, reason) when a value the hub needs from an application row is unusable."""
    if not is_reference(row["app_ref"]):
        return "app_ref", "the application reference is empty or not a reference"
    if not is_status_word(row["status"]):
        return "status", "the status is empty or not a status word"
    if not isinstance(row["last_updated"], datetime):
        return "last_updated", "the last-updated time is not a date and time"
    decision = row.get("decision_date")
    if decision is not None and not isinstance(decision, date):
        return "decision_date", "the decision date is not a date"
    return None


def _param(params: Mapping[str, Any], name: str, max_length: int) -> str:
    """A look-up parameter checked at the edge against the column it is compared with."""
    value = params.get(name)
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
        raise Rejected(f"lookup: field {name} is required", code="invalid-field", field=name)
    text = str(value).strip()
    if len(text) > max_length or not text.isprintable():
        raise Rejected(f"lookup: field {name} is not a valid reference (at most {max_length} "
                       "printable characters)", code="invalid-field", field=name)
    return text


def _usable_key(key: str) -> bool:
    """A command key that can be in the external-reference column (64 printable characters)."""
    return isinstance(key, str) and 0 < len(key) <= 64 and key.isprintable()


class _ConcurrentWriter(Exception):
    """Another writer inserted one of the batch's keys between its look-up and its insert."""


def _rejected_outcome(command: Command, exc: Rejected) -> Outcome:
    return Outcome(key=command.key, status=OutcomeStatus.REJECTED, message=exc.message,
                   error_class=error_class_name(exc), code=exc.code, held=exc.held,
                   field=exc.field)


def _keyed(*columns: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """Columns labelled by their logical key, so result rows use logical names."""
    return [c.label(c.key) for c in columns]


def _activity(model: BaseModel) -> str | None:
    if isinstance(model, PremisesLicence):
        return ",".join(model.activities)
    if isinstance(model, AnimalEstablishmentLicence):
        return model.activity
    if isinstance(model, StreetTradingConsent):
        return model.commodities
    return None


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


__all__ = ["UniformConfig", "UniformConnector", "DEFAULT_LICENCE_TYPES", "DEFAULT_CRM_STATUSES"]
