"""Benefits (Housing Benefit, Academy style) connector: daily change-of-circumstances files over SFTP.

submit(): validated commands become records of one CSV file (``fileformat``) uploaded to the inbound
folder under a temporary name, verified (size, SHA-256) and renamed. Each delivered record gets an
AWAITING outcome (reference = file name, ``details["due_by"]`` = when the answer is due).

fetch_updates(since): reads the outbound folder (answers ``R``, staff changes ``S``), de-duplicates
by content hash, returns every line of each file that has a line after ``since`` (an earlier line of
such a file may not have been seen: the cursor can pass it through another file), and moves to the
archive folder only files whose every line is at or before ``since`` (the hub has stored them: its
cursor passed them), so a crash after fetching loses nothing.

Idempotency: before uploading, the connector looks for each key's answer in outbound and archive
(answered: the final outcome, no upload) and in inbound files not yet picked up (delivered:
AWAITING, no upload). The back office de-duplicates records by content hash as the last line.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Self

from pydantic import Field, SecretStr, model_validator

from connectors.base import (BackOfficeRecord, Command, Connector, ConnectorConfig, Finding,
                             Outcome, OutcomeStatus, Update)
from connectors.benefits import fileformat as ff
from connectors.benefits.operations import OPERATIONS, ClaimChange
from connectors.errors import (ConnectorError, PermanentError, Rejected, TransientError,
                               UnreadableAnswer, error_class_name)
from connectors.fields import flat_fields
from connectors.benefits.seen import SeenFiles
from connectors.transports import sftp

log = logging.getLogger(__name__)

#: Staff status words in status files -> the status to show in the CRM.
CRM_STATUS = {"CHANGE_APPLIED": "closed", "RECALCULATED": "closed", "UNDER_REVIEW": "open",
              "EVIDENCE_REQUESTED": "open", "SUSPENDED": "open", "CLAIM_CLOSED": "closed"}
FILE_PREFIX = "COC_"
STALE_TEMP_SECONDS = 3600


class AcademyConfig(ConnectorConfig):
    """Connection settings for the Benefits SFTP exchange (Airflow: host, port, login, password)."""

    connection_fields: ClassVar[Mapping[str, str]] = {
        "host": "host", "port": "port", "login": "username", "password": "password"}

    host: str
    port: int = 22
    username: str
    password: SecretStr | None = None
    private_key_path: str | None = None
    private_key_passphrase: SecretStr | None = None
    known_hosts_path: str | None = None
    host_key: str | None = None
    """One known_hosts line, or ``<key type> <base64>``, when no known_hosts file is used."""
    inbound_dir: str = "inbound"
    outbound_dir: str = "outbound"
    archive_dir: str = "archive"
    response_due_minutes: int = 24 * 60
    """How long the back office has to answer a delivered record before it is overdue."""
    archive_lookback_days: int = 35
    """How far back in the archive to look for a key's answer before uploading it again."""
    quarantine_dir: str = "quarantine"
    """Where an outbound file the hub cannot read is moved (with an operations work item), so it
    is not read again every run. Created when missing."""
    extract_dir: str = "extract"
    """Where the back office publishes its claim extract (``CLAIMS_<time>.csv``), read by
    ``records()`` for reconciliation; the newest complete one is read."""
    extract_max_bytes: int = Field(default=2 * 1024**3, ge=1024, le=64 * 1024**3)
    """The largest claim extract read (it is streamed, never held whole)."""
    state_file: str = ".hub-seen-files.json"
    """The hub's record of outbound files it has returned updates from, kept in ``archive_dir``:
    a file is archived only after the hub stored what was in it."""

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.password is None and not self.private_key_path:
            raise ValueError("password or private_key_path is required")
        if not self.known_hosts_path and not self.host_key:
            raise ValueError("known_hosts_path or host_key is required")
        return self

    def sftp_settings(self) -> sftp.SftpSettings:
        return sftp.SftpSettings(
            host=self.host, port=self.port, username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            private_key_path=self.private_key_path,
            private_key_passphrase=(self.private_key_passphrase.get_secret_value()
                                    if self.private_key_passphrase else None),
            known_hosts_path=self.known_hosts_path, host_key=self.host_key,
            timeout=self.timeout_seconds)


@dataclass(frozen=True)
class _Answer:
    response: ff.Response
    file_name: str


@dataclass(frozen=True)
class _OutboundFile:
    name: str
    parsed: ff.ResponseFile
    digest: str = ""

    def latest(self) -> datetime:
        moments = [r.answered_at for r in self.parsed.responses] + \
            [s.changed_at for s in self.parsed.status_changes] + \
            [f.answered_at for f in self.parsed.file_rejections]
        return max(moments, default=self.parsed.created_at)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class AcademyConnector(Connector[AcademyConfig]):
    """Housing Benefit changes of circumstances as files over SFTP."""

    system = "benefits_academy"
    Config: ClassVar[type[ConnectorConfig]] = AcademyConfig
    operations: ClassVar[Mapping[str, type[ClaimChange]]] = OPERATIONS

    def __init__(self, config: AcademyConfig) -> None:
        super().__init__(config)
        self._kept: sftp.SftpSession | None = None
        """The open SSH connection reused by the next call (``_session``; ``close`` ends it)."""
        self.upload_progress: Callable[[int], None] | None = None
        """Called with the bytes written so far during an upload (monitoring, fault tests)."""
        self._archive_cache: dict[tuple[str, int | None, int | None], ff.ResponseFile] = {}
        self._inbound_cache: dict[tuple[str, int | None, int | None],
                                  tuple[tuple[str, ...], datetime]] = {}
        """Record ids and creation time of the hub's own inbound files already read (by name, size,
        mtime), so each delivered file is read once, not once per later batch. An in-memory
        cache of what is still in inbound, like ``_archive_cache``; the record of outbound files
        returned (``SeenFiles``) and the quarantine are separate and untouched by it."""

    # -- helpers --------------------------------------------------------------------------------
    def _path(self, folder: str, name: str) -> str:
        return f"{folder.rstrip('/')}/{name}"

    @contextlib.contextmanager
    def _session(self) -> Iterator[sftp.SftpSession]:
        """The SSH connection kept open across this connector's calls (a task's batches: one
        handshake, not one per batch file), opened when there is none or it has dropped. Any
        failure inside closes it, so the next try (``retrying``) starts on a fresh connection."""
        session = self._kept
        if session is None or not session.active():
            self._kept = None
            if session is not None:
                session.close()
            session = self._kept = sftp.connect(self.config.sftp_settings())
        try:
            yield session
        except BaseException:
            self._kept = None
            session.close()
            raise

    def close(self) -> None:
        """Close the kept SSH connection (the next call opens a new one)."""
        session, self._kept = self._kept, None
        if session is not None:
            session.close()

    # -- contract -------------------------------------------------------------------------------
    def check(self) -> None:
        """Connect, authenticate and list the three folders."""
        with self._session() as session:
            for folder in (self.config.inbound_dir, self.config.outbound_dir, self.config.archive_dir):
                session.list_files(folder)

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        """Deliver the valid commands in one file; AWAITING per delivered record."""
        outcomes: dict[int, Outcome] = {}
        records: list[tuple[int, Command, ff.ChangeRecord]] = []
        for index, command in enumerate(commands):
            try:
                model = self.validate(command)
                records.append((index, command, _record(command, model)))  # type: ignore[arg-type]
            except Rejected as exc:
                outcomes[index] = Outcome(key=command.key, status=OutcomeStatus.REJECTED,
                                          message=exc.message, error_class=error_class_name(exc),
                                          code=exc.code, field=exc.field)
        if records:
            try:
                outcomes.update(self.retrying()(self._deliver, records))
            except (TransientError, PermanentError) as exc:
                log.warning("benefits file delivery failed: %s (%s)", error_class_name(exc), exc.code)
                for index, command, _ in records:
                    outcomes[index] = Outcome(key=command.key, status=OutcomeStatus.RETRY,
                                              message=exc.message, error_class=error_class_name(exc),
                                              code=exc.code)
        return [outcomes[i] for i in range(len(commands))]

    def fetch_updates(self, since: datetime) -> list[Update]:
        """Answers and staff changes in outbound files, oldest first; archives the files the hub
        has stored (see ``SeenFiles``). A file the hub has not returned before is returned whole,
        whatever its dates: nothing is archived unread."""
        since = _aware(since)
        with self._session() as session:
            files = self._read_outbound(session)
            seen = SeenFiles.load(session, self._path(self.config.archive_dir,
                                                      self.config.state_file))
            updates: dict[str, Update] = {}
            stored: list[_OutboundFile] = []
            for item in files:
                if item.latest() <= since and seen.stored(item.name, item.digest, since):
                    stored.append(item)   # returned before, and the hub's cursor moved since
                    continue
                # Every line of a file not yet stored, even one dated before ``since``: the cursor
                # may have passed it through another file, and the hub applies each update once.
                for update in self._updates_in(item):
                    known = updates.get(update.update_id)
                    if known is None or update.changed_at < known.changed_at:
                        updates[update.update_id] = update
                seen.returned(item.name, item.digest, since)
            archived = sum(self._archive(session, item.name) for item in stored)
            seen.keep_only({item.name for item in files} - {item.name for item in stored})
            seen.save(session)
        result = sorted(updates.values(), key=lambda u: (u.changed_at, u.update_id))
        log.info("benefits outbound: %d files, %d updates, %d archived", len(files), len(result),
                 archived)
        return result

    def snapshot(self, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """The back office's answer per key, from outbound and the archive (answered keys only)."""
        with self._session() as session:
            answers = self._answers(session)
        return {key: {"result": a.response.result, "claim_ref": a.response.claim_ref,
                      "reason_code": a.response.reason_code, "file": a.file_name}
                for key in keys if (a := answers.get(key)) is not None}

    def records(self, *, since: datetime | None = None,
                page_size: int = 500) -> Iterator[BackOfficeRecord]:
        """Every change the back office holds, from its newest claim extract
        (``<extract_dir>/CLAIMS_<time>.csv``, file type ``ACADEMY-EXT``), streamed a chunk at a
        time up to ``extract_max_bytes`` (``page_size`` is only checked: the file is the
        page). ``key`` = record id (the command key), ``reference`` = claim reference, ``fields``
        = the change's fields plus ``claim_ref``. ``since``: changes whose status changed at or
        after it. A line the hub cannot use is set aside; a broken envelope (header, trailer
        count or checksum, found at the end) raises ``UnreadableAnswer``: the whole read failed.
        No extract yet is a ``TransientError`` (the back office publishes it nightly)."""
        self.page_size_for(page_size, maximum=100_000)
        since_utc = _aware(since) if since is not None else None
        folder = self.config.extract_dir
        with self._session() as session:
            names = sorted(f.filename for f in session.list_files(folder)
                           if ff.is_complete_name(f.filename)
                           and f.filename.startswith(ff.EXTRACT_PREFIX))
            if not names:
                raise TransientError(f"benefits: no claim extract in {folder} yet",
                                     code="no-extract")
            name = names[-1]
            lines = session.iter_lines(self._path(folder, name),
                                       max_bytes=self.config.extract_max_bytes)
            try:
                for item in ff.read_extract(lines):
                    if isinstance(item, ff.BadLine):
                        self.set_aside(operation="claim extract", entry=f"{name} line {item.line}",
                                       field=item.field, reason=item.reason, code="bad-line")
                        continue
                    if since_utc is not None and item.changed_at < since_utc:
                        continue
                    yield _extract_record(item)
            except ff.FileFormatError as exc:
                raise UnreadableAnswer(f"claim extract {name} line {exc.line}: {exc}",
                                       code="bad-extract") from exc
            finally:
                lines.close()

    # -- submit ---------------------------------------------------------------------------------
    def _deliver(self, records: list[tuple[int, Command, ff.ChangeRecord]]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        with self._session() as session:
            answers = self._answers(session)
            pending = self._pending(session)
            to_send: list[tuple[int, Command, ff.ChangeRecord]] = []
            for index, command, record in records:
                answer = answers.get(command.key)
                if answer is not None:
                    outcomes[index] = _answered(command.key, answer)
                elif command.key in pending:
                    name, delivered_at = pending[command.key]
                    outcomes[index] = self._awaiting(command.key, name, delivered_at, record)
                else:
                    to_send.append((index, command, record))
            if to_send:
                now = _now()
                name = f"{FILE_PREFIX}{now:%Y%m%dT%H%M%S%f}_{secrets.token_hex(4)}{ff.FILE_SUFFIX}"
                data = ff.build_change_file(name.removesuffix(ff.FILE_SUFFIX), now,
                                            [r for _, _, r in to_send])
                inbound = self.config.inbound_dir
                temp = self._path(inbound, ff.temporary_name(name))
                try:
                    session.upload_verified(data, temp, self._path(inbound, name),
                                            progress=self.upload_progress)
                except ConnectorError:
                    self._discard_quietly(temp)
                    raise
                log.info("benefits file %s delivered: %d records, %d bytes", name, len(to_send),
                         len(data))
                for index, command, record in to_send:
                    outcomes[index] = self._awaiting(command.key, name, now, record)
            if len(to_send) < len(records):
                log.info("benefits: %d records already delivered or answered, not uploaded",
                         len(records) - len(to_send))
        return outcomes

    def _awaiting(self, key: str, file_name: str, delivered_at: datetime,
                  record: ff.ChangeRecord) -> Outcome:
        due = delivered_at + timedelta(minutes=self.config.response_due_minutes)
        return Outcome(key=key, status=OutcomeStatus.AWAITING, reference=file_name,
                       details={"file": file_name, "due_by": due.isoformat(),
                                "content_hash": record.content_hash})

    def _discard_quietly(self, temp: str) -> None:
        """Remove a temporary file a failed attempt left (best effort, on a new connection)."""
        try:
            with sftp.connect(self.config.sftp_settings()) as session:
                session.remove(temp)
        except (ConnectorError, OSError):
            log.debug("temporary file left for later clean-up")

    def _pending(self, session: sftp.SftpSession) -> dict[str, tuple[str, datetime]]:
        """Keys in inbound files the back office has not picked up yet; removes stale temp files."""
        pending: dict[str, tuple[str, datetime]] = {}
        folder = self.config.inbound_dir
        still_inbound: dict[tuple[str, int | None, int | None],
                            tuple[tuple[str, ...], datetime]] = {}
        for entry in session.list_files(folder):
            name = entry.filename
            modified = datetime.fromtimestamp(entry.st_mtime or 0, timezone.utc)
            if ff.is_temporary_name(name):
                if name.startswith(f".{FILE_PREFIX}") and \
                        (_now() - modified).total_seconds() > STALE_TEMP_SECONDS:
                    try:
                        session.remove(self._path(folder, name))
                    except ConnectorError as exc:
                        log.info("benefits: stale temporary file not removed (%s)", exc.code)
                continue
            if not (name.startswith(FILE_PREFIX) and ff.is_complete_name(name)):
                continue
            cache_key = (name, entry.st_size, entry.st_mtime)
            known = self._inbound_cache.get(cache_key)
            if known is None:   # a file not read before (each batch's file is read once)
                try:
                    data = self._try(lambda: session.read(self._path(folder, name),
                                                          max_bytes=self.config.max_answer_bytes))
                except UnreadableAnswer:
                    continue   # not a file of ours (ours are far smaller)
                if data is None:
                    continue  # picked up by the back office while we looked
                try:
                    parsed = ff.parse_change_file(data)
                except ff.FileFormatError:
                    log.warning("benefits inbound file %s is not valid; ignored", name)
                    continue
                known = (tuple(r.record_id for r in parsed.records), parsed.created_at)
            still_inbound[cache_key] = known
            for record_id in known[0]:
                pending[record_id] = (name, known[1])
        self._inbound_cache = still_inbound   # files the back office took are forgotten
        return pending

    # -- outbound -------------------------------------------------------------------------------
    def _read_outbound(self, session: sftp.SftpSession) -> list[_OutboundFile]:
        """Every readable outbound file. A file that is too large or whose envelope is broken
        is quarantined; a bad line is set aside (both with an operations work item naming the
        file and the line) and the rest of its file is used."""
        files = []
        folder = self.config.outbound_dir
        for entry in sorted(session.list_files(folder), key=lambda e: e.filename):
            name = entry.filename
            if not ff.is_complete_name(name):
                continue
            try:
                data = self._try(lambda: session.read(self._path(folder, name),
                                                      max_bytes=self.config.max_answer_bytes))
            except UnreadableAnswer as exc:
                self._quarantine(session, name, None, exc.message, exc.code)
                continue
            if data is None:
                continue
            try:
                parsed, bad_lines = ff.read_response_file(data)
            except ff.FileFormatError as exc:
                self._quarantine(session, name, exc.line, str(exc), "invalid-file")
                continue
            for bad in bad_lines:
                self.set_aside(operation="outbound file", entry=f"{name} line {bad.line}",
                               field=bad.field, reason=f"{bad.kind} line: {bad.reason}",
                               code="bad-line")
            for rejection in parsed.file_rejections:
                log.warning("benefits back office refused file %s: %s", rejection.file_name,
                            rejection.reason_code)
            files.append(_OutboundFile(name, parsed, ff.sha256_hex(data)))
        return files

    def _quarantine(self, session: sftp.SftpSession, name: str, line: int | None, reason: str,
                    code: str | None) -> None:
        """Move an unreadable outbound file aside (it is not read again) and tell operations."""
        where = f"{name} line {line}" if line else name
        target_dir = self.config.quarantine_dir
        moved = True
        try:
            session.make_folder(target_dir)
            target = self._path(target_dir, name)
            session.rename(self._path(self.config.outbound_dir, name), target)
        except ConnectorError as exc:
            moved = False
            log.warning("benefits: could not quarantine %s (%s); it stays in outbound", name,
                        exc.code)
        self._notify(Finding(
            system=self.system_id(), kind="file_quarantined", operation="outbound file",
            entry=where, field=None, code=code,
            reason=(f"{reason}; moved to {target_dir}/{name}" if moved
                    else f"{reason}; could not be moved and stays in outbound")))
        log.warning("benefits outbound file %s is not readable (%s, line %s); quarantined",
                    name, code, line or "-")

    def _answers(self, session: sftp.SftpSession) -> dict[str, _Answer]:
        """Each key's answer, from the archive (recent files) and outbound; outbound wins."""
        answers: dict[str, _Answer] = {}
        horizon = time.time() - self.config.archive_lookback_days * 86400
        folder = self.config.archive_dir
        for entry in sorted(session.list_files(folder), key=lambda e: e.filename):
            if not ff.is_complete_name(entry.filename) or (entry.st_mtime or 0) < horizon:
                continue
            cache_key = (entry.filename, entry.st_size, entry.st_mtime)
            parsed = self._archive_cache.get(cache_key)
            if parsed is None:
                try:
                    data = self._try(lambda: session.read(
                        self._path(folder, entry.filename), max_bytes=self.config.max_answer_bytes))
                except UnreadableAnswer:
                    continue   # quarantined material never reaches the archive; skip, not fail
                if data is None:
                    continue
                try:
                    parsed, _ = ff.read_response_file(data)
                except ff.FileFormatError:
                    continue
                self._archive_cache[cache_key] = parsed
            for response in parsed.responses:
                answers.setdefault(response.record_id, _Answer(response, entry.filename))
        for item in self._read_outbound(session):
            for response in item.parsed.responses:
                answers.setdefault(response.record_id, _Answer(response, item.name))
        return answers

    def _updates_in(self, item: _OutboundFile) -> list[Update]:
        updates = []
        for r in item.parsed.responses:
            accepted = r.result == ff.ACCEPTED
            updates.append(Update(
                system=self.system_id(), update_id=f"answer:{r.content_hash}",
                reference=r.claim_ref or r.record_id, status=r.result, changed_at=r.answered_at,
                key=r.record_id, crm_status=None, note=None,
                resolves=OutcomeStatus.CONFIRMED if accepted else OutcomeStatus.REJECTED,
                message=None if accepted else f"{r.reason_code}: {r.reason}"))
        for s in item.parsed.status_changes:
            updates.append(Update(
                system=self.system_id(), update_id=f"status:{s.content_hash}",
                reference=s.claim_ref, status=s.status, changed_at=s.changed_at,
                key=s.record_id or None, crm_status=CRM_STATUS.get(s.status), note=s.note or None))
        return updates

    def _archive(self, session: sftp.SftpSession, name: str) -> int:
        source = self._path(self.config.outbound_dir, name)
        try:
            session.rename(source, self._path(self.config.archive_dir, name))
        except ConnectorError as exc:
            log.warning("benefits: could not archive %s (%s); will try again", name, exc.code)
            return 0
        return 1

    @staticmethod
    def _try(read: Callable[[], Any]) -> Any:
        """``read()``, or None when the file vanished meanwhile (moved by the other side)."""
        try:
            return read()
        except PermanentError as exc:
            if exc.code == "no-such-path":
                return None
            raise


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _record(command: Command, model: ClaimChange) -> ff.ChangeRecord:
    return ff.ChangeRecord(record_id=command.key, case_ref=command.case_ref,
                           change_type=command.operation, claim_ref=model.claim_ref,
                           effective_date=model.effective_date(),
                           fields=model.model_dump(mode="json", exclude={"claim_ref"},
                                                   exclude_none=True))


def _extract_record(row: ff.ExtractRow) -> BackOfficeRecord:
    operation = row.change_type if row.change_type in OPERATIONS else None
    fields = flat_fields({"claim_ref": row.claim_ref, **row.fields}) if operation else {}
    return BackOfficeRecord(reference=row.claim_ref, key=row.record_id, status=row.status,
                            fields=fields, crm_status=CRM_STATUS.get(row.status),
                            changed_at=row.changed_at.astimezone(timezone.utc),
                            operation=operation)


def _answered(key: str, answer: _Answer) -> Outcome:
    r = answer.response
    if r.result == ff.ACCEPTED:
        return Outcome(key=key, status=OutcomeStatus.CONFIRMED, reference=r.claim_ref,
                       details={"answered_in": answer.file_name})
    return Outcome(key=key, status=OutcomeStatus.REJECTED, reference=r.claim_ref or None,
                   message=f"{r.reason_code}: {r.reason}", code=r.reason_code,
                   error_class="Rejected", details={"answered_in": answer.file_name})
