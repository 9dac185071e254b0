"""The Benefits change-of-circumstances file format (CSV with header and trailer): build, parse, verify.

Both directions use the same envelope: UTF-8, RFC 4180 (CRLF line ends, quoted fields)::

    H,<file type>,<format version>,<file id>,<created at ISO-8601 UTC>
    <record lines>
    T,<record count>,<SHA-256 hex of every byte before the trailer line>

Inbound (hub -> back office), file type ``ACADEMY-COC``, one ``D`` line per change::

    D,<record id = command key>,<case ref>,<change type>,<claim ref>,<effective date>,<fields JSON>

Outbound (back office -> hub), file type ``ACADEMY-RSP``::

    R,<record id>,<record content hash>,ACCEPTED|REJECTED,<claim ref>,<reason code>,<reason>,<answered at>
    S,<event id>,<claim ref>,<record id or empty>,<status>,<changed at>,<note>
    F,<inbound file name>,<reason code>,<reason>,<answered at>

See docs/connectors/benefits.md for the meaning of every column.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from connectors.fields import is_reference, is_status_word

CHANGE_FILE_TYPE = "ACADEMY-COC"
RESPONSE_FILE_TYPE = "ACADEMY-RSP"
EXTRACT_FILE_TYPE = "ACADEMY-EXT"
EXTRACT_PREFIX = "CLAIMS_"
FORMAT_VERSION = "1"
FILE_SUFFIX = ".csv"
TEMP_SUFFIX = ".part"

ACCEPTED = "ACCEPTED"
REJECTED = "REJECTED"


class FileFormatError(ValueError):
    """A file does not follow the format (bad header, trailer count or checksum, bad line).
    ``line`` is the 1-based line at fault, when one is."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class BadLine:
    """One line of a response file the hub cannot use (the rest of the file is used)."""

    line: int
    kind: str
    field: str
    reason: str


def is_temporary_name(name: str) -> bool:
    """Names a file still being written (never processed): dot-prefixed or ``.part``."""
    return name.startswith(".") or name.endswith(TEMP_SUFFIX)


def is_complete_name(name: str) -> bool:
    """A finished exchange file: ``*.csv`` and not a temporary name."""
    return name.endswith(FILE_SUFFIX) and not is_temporary_name(name)


def temporary_name(final_name: str) -> str:
    """The name a file is written under before it is renamed to ``final_name``."""
    return f".{final_name}{TEMP_SUFFIX}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


# -- records ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChangeRecord:
    """One change of circumstances in an inbound file."""

    record_id: str
    case_ref: str
    change_type: str
    claim_ref: str
    effective_date: date
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the record's content, the same in every file it appears in."""
        return sha256_hex(_canonical([self.record_id, self.change_type, self.claim_ref,
                                      self.effective_date.isoformat(), self.fields]).encode())

    def row(self) -> list[str]:
        return ["D", self.record_id, self.case_ref, self.change_type, self.claim_ref,
                self.effective_date.isoformat(), _canonical(self.fields)]


@dataclass(frozen=True)
class Response:
    """The back office's answer to one change record."""

    record_id: str
    record_hash: str
    result: str
    claim_ref: str
    reason_code: str
    reason: str
    answered_at: datetime

    @property
    def content_hash(self) -> str:
        """Identity of the answer; the same when it is repeated in a later file."""
        return sha256_hex(_canonical(["R", self.record_id, self.record_hash, self.result,
                                      self.claim_ref, self.reason_code]).encode())

    def row(self) -> list[str]:
        return ["R", self.record_id, self.record_hash, self.result, self.claim_ref,
                self.reason_code, self.reason, _iso(self.answered_at)]


@dataclass(frozen=True)
class StatusChange:
    """A later change made by back-office staff to a claim."""

    event_id: str
    claim_ref: str
    record_id: str
    status: str
    changed_at: datetime
    note: str = ""

    @property
    def content_hash(self) -> str:
        return sha256_hex(_canonical(["S", self.event_id, self.claim_ref, self.status]).encode())

    def row(self) -> list[str]:
        return ["S", self.event_id, self.claim_ref, self.record_id, self.status,
                _iso(self.changed_at), self.note]


@dataclass(frozen=True)
class FileRejection:
    """The back office refused a whole inbound file (it failed validation)."""

    file_name: str
    reason_code: str
    reason: str
    answered_at: datetime

    def row(self) -> list[str]:
        return ["F", self.file_name, self.reason_code, self.reason, _iso(self.answered_at)]


@dataclass(frozen=True)
class ChangeFile:
    file_id: str
    created_at: datetime
    records: tuple[ChangeRecord, ...]


@dataclass(frozen=True)
class ResponseFile:
    file_id: str
    created_at: datetime
    responses: tuple[Response, ...] = ()
    status_changes: tuple[StatusChange, ...] = ()
    file_rejections: tuple[FileRejection, ...] = ()


# -- envelope -----------------------------------------------------------------------------------
def _line(row: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(row)
    return buffer.getvalue().encode("utf-8")


def _build(file_type: str, file_id: str, created_at: datetime, rows: Iterable[Sequence[str]]) -> bytes:
    body = bytearray(_line(["H", file_type, FORMAT_VERSION, file_id, _iso(created_at)]))
    count = 0
    for row in rows:
        body += _line(row)
        count += 1
    return bytes(body) + _line(["T", str(count), sha256_hex(bytes(body))])


def verify(data: bytes) -> tuple[list[list[str]], list[str]]:
    """Check the trailer's count and checksum; the header row and the record rows."""
    if not data.endswith(b"\n"):
        raise FileFormatError("file does not end with a complete trailer line",
                              line=data.count(b"\n") + 1)
    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
    body, trailer_bytes = data[:cut], data[cut:]
    try:
        rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        [trailer] = list(csv.reader(io.StringIO(trailer_bytes.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise FileFormatError("file is not valid UTF-8 CSV", line=_bad_text_line(body)) from exc
    last = body.count(b"\n") + 1
    if len(trailer) != 3 or trailer[0] != "T":
        raise FileFormatError("last line is not a trailer", line=last)
    if not rows or rows[0][:1] != ["H"] or len(rows[0]) < 5:
        raise FileFormatError("first line is not a header", line=1)
    if rows[0][2] != FORMAT_VERSION:
        raise FileFormatError("unsupported format version", line=1)
    records = rows[1:]
    if trailer[1] != str(len(records)):
        raise FileFormatError(f"trailer count does not match the {len(records)} records",
                              line=last)
    if trailer[2] != sha256_hex(body):
        raise FileFormatError("trailer checksum does not match the file", line=last)
    return records, rows[0]


def _parse_dt(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise FileFormatError(f"bad timestamp in {what}") from exc
    if moment.tzinfo is None:
        raise FileFormatError(f"timestamp without time zone in {what}")
    return moment


def _header(header: list[str], file_type: str) -> tuple[str, datetime]:
    if header[1] != file_type:
        raise FileFormatError(f"file type is not {file_type}", line=1)
    try:
        return header[3], _parse_dt(header[4], "header")
    except FileFormatError as exc:
        raise FileFormatError(str(exc), line=1) from None


def _bad_text_line(body: bytes) -> int | None:
    """The first line that is not UTF-8, for the operator's work item."""
    for number, raw in enumerate(body.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


# -- change files (hub -> back office) ----------------------------------------------------------
def build_change_file(file_id: str, created_at: datetime, records: Sequence[ChangeRecord]) -> bytes:
    """An inbound file with these records."""
    return _build(CHANGE_FILE_TYPE, file_id, created_at, (r.row() for r in records))


def parse_change_file(data: bytes) -> ChangeFile:
    """Verify and read an inbound file, or raise ``FileFormatError``."""
    rows, header = verify(data)
    file_id, created_at = _header(header, CHANGE_FILE_TYPE)
    records = []
    for number, row in enumerate(rows, start=2):
        if len(row) != 7 or row[0] != "D":
            raise FileFormatError(f"line {number}: not a D record with 7 columns")
        try:
            fields = json.loads(row[6])
            effective = date.fromisoformat(row[5])
        except ValueError as exc:
            raise FileFormatError(f"line {number}: bad effective date or fields") from exc
        if not isinstance(fields, dict):
            raise FileFormatError(f"line {number}: fields is not a JSON object")
        records.append(ChangeRecord(row[1], row[2], row[3], row[4], effective, fields))
    return ChangeFile(file_id, created_at, tuple(records))


# -- response files (back office -> hub) --------------------------------------------------------
def build_response_file(file_id: str, created_at: datetime, *,
                        responses: Sequence[Response] = (),
                        status_changes: Sequence[StatusChange] = (),
                        file_rejections: Sequence[FileRejection] = ()) -> bytes:
    """An outbound file with answers, staff changes and whole-file rejections."""
    rows = [r.row() for r in file_rejections] + [r.row() for r in responses] + \
        [s.row() for s in status_changes]
    return _build(RESPONSE_FILE_TYPE, file_id, created_at, rows)


def parse_response_file(data: bytes) -> ResponseFile:
    """Verify and read an outbound file, or raise ``FileFormatError``."""
    rows, header = verify(data)
    file_id, created_at = _header(header, RESPONSE_FILE_TYPE)
    responses, changes, rejections = [], [], []
    for number, row in enumerate(rows, start=2):
        kind = row[0] if row else ""
        where = f"line {number}"
        if kind == "R" and len(row) == 8:
            if row[3] not in (ACCEPTED, REJECTED):
                raise FileFormatError(f"{where}: unknown result")
            responses.append(Response(row[1], row[2], row[3], row[4], row[5], row[6],
                                      _parse_dt(row[7], where)))
        elif kind == "S" and len(row) == 7:
            changes.append(StatusChange(row[1], row[2], row[3], row[4], _parse_dt(row[5], where),
                                        row[6]))
        elif kind == "F" and len(row) == 5:
            rejections.append(FileRejection(row[1], row[2], row[3], _parse_dt(row[4], where)))
        else:
            raise FileFormatError(f"{where}: unknown record type or column count")
    return ResponseFile(file_id, created_at, tuple(responses), tuple(changes), tuple(rejections))


#: Columns each outbound line needs (more are allowed and ignored: a later format version may
#: add columns at the end); lines of another kind are ignored.
_NEEDED_COLUMNS = {"R": 8, "S": 7, "F": 5}


def read_response_file(data: bytes) -> tuple[ResponseFile, list[BadLine]]:
    """Read an outbound file tolerantly: the envelope must hold (header, trailer count and
    checksum: else ``FileFormatError`` with the line), but one bad line is set aside as a
    ``BadLine`` naming the line and the field while the rest is read. Lines of a kind the hub does
    not know, and columns past the ones it uses, are ignored."""
    rows, header = verify(data)
    file_id, created_at = _header(header, RESPONSE_FILE_TYPE)
    responses: list[Response] = []
    changes: list[StatusChange] = []
    rejections: list[FileRejection] = []
    bad: list[BadLine] = []
    for number, row in enumerate(rows, start=2):
        kind = row[0] if row else ""
        needed = _NEEDED_COLUMNS.get(kind)
        if needed is None:
            continue
        if len(row) < needed:
            bad.append(BadLine(number, kind, f"column {len(row) + 1}",
                               f"{kind} line has {len(row)} columns, needs {needed}"))
            continue
        problem = _line_problem(kind, row)
        if problem is not None:
            bad.append(BadLine(number, kind, *problem))
            continue
        try:
            if kind == "R":
                responses.append(Response(row[1], row[2], row[3], row[4], row[5], row[6],
                                          _parse_dt(row[7], f"line {number}")))
            elif kind == "S":
                changes.append(StatusChange(row[1], row[2], row[3], row[4],
                                            _parse_dt(row[5], f"line {number}"), row[6]))
            else:
                rejections.append(FileRejection(row[1], row[2], row[3],
                                                _parse_dt(row[4], f"line {number}")))
        except FileFormatError as exc:
            field = {"R": "answered_at", "S": "changed_at", "F": "answered_at"}[kind]
            bad.append(BadLine(number, kind, field, str(exc).split(": ")[0]))
    return (ResponseFile(file_id, created_at, tuple(responses), tuple(changes),
                         tuple(rejections)), bad)


def _line_problem(kind: str, row: list[str]) -> tuple[str, str] | None:
    """(field, reason) when a needed value of a line is missing or not allowed."""
    if kind == "R":
        if not row[1].strip():
            return "record_id", "empty record id"
        if row[3] not in (ACCEPTED, REJECTED):
            return "result", "result is neither ACCEPTED nor REJECTED"
        if row[3] == ACCEPTED and not is_reference(row[4]):
            return "claim_ref", "an accepted answer without a readable claim reference"
        if row[3] == REJECTED and not row[5].strip():
            return "reason_code", "a rejection without a reason code"
    elif kind == "S":
        if not row[1].strip():
            return "event_id", "empty event id"
        if not is_reference(row[2]):
            return "claim_ref", "no readable claim reference"
        if not is_status_word(row[4]):
            return "status", "empty or not a status word"
    elif kind == "F" and not row[1].strip():
        return "file_name", "empty file name"
    return None


# -- the claim extract (back office -> hub, for reconciliation) --------------------------------
@dataclass(frozen=True)
class ExtractRow:
    """One ``X`` line: a change the back office holds, as it holds it now."""

    line: int
    record_id: str
    claim_ref: str
    change_type: str
    effective_date: str
    fields: Mapping[str, Any]
    status: str
    changed_at: datetime


def read_extract(lines: Iterable[bytes]) -> Iterator[ExtractRow | BadLine]:
    """Read an ``ACADEMY-EXT`` file line by line (never whole): each ``X`` line as an
    ``ExtractRow``, or a ``BadLine`` naming the line and the field when a value is unusable; lines
    of other kinds and extra columns are ignored. The envelope is checked as it streams: a bad
    header at once, the trailer's count and checksum at the end (``FileFormatError`` naming the
    line; rows before it have been yielded, so a caller must treat the whole read as failed)."""
    digest = hashlib.sha256()
    pending: bytes | None = None
    number = count = 0

    def raw_lines() -> Iterator[str]:
        nonlocal pending, number
        for raw in lines:
            if pending is not None:
                digest.update(pending)   # every line but the last (the trailer) is hashed
            pending = raw
            number += 1
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FileFormatError("file is not valid UTF-8", line=number) from exc

    rows = csv.reader(raw_lines())
    trailer: list[str] | None = None
    try:
        header = next(rows, None)
        if header is None or header[:1] != ["H"] or len(header) < 5:
            raise FileFormatError("first line is not a header", line=1)
        if header[2] != FORMAT_VERSION:
            raise FileFormatError("unsupported format version", line=1)
        _header(header, EXTRACT_FILE_TYPE)
        for row in rows:
            if trailer is not None:
                raise FileFormatError("lines after the trailer", line=number)
            if row[:1] == ["T"]:
                trailer = row
                continue
            count += 1
            if row[:1] == ["X"]:
                yield _extract_row(number, row)
    except csv.Error as exc:
        raise FileFormatError("file is not valid CSV", line=number) from exc
    if trailer is None or len(trailer) != 3:
        raise FileFormatError("file does not end with a trailer line", line=number)
    if trailer[1] != str(count):
        raise FileFormatError(f"trailer count does not match the {count} records", line=number)
    if trailer[2] != digest.hexdigest():
        raise FileFormatError("trailer checksum does not match the file", line=number)


#: A record id as the hub writes them (its command keys), never markup or blank.
_RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,199}")


def _extract_row(number: int, row: list[str]) -> ExtractRow | BadLine:
    if len(row) < 8:
        return BadLine(number, "X", f"column {len(row) + 1}", f"X line has {len(row)} columns, needs 8")
    checks = (("record_id", _RECORD_ID.fullmatch(row[1]) is not None, "no usable record id"),
              ("claim_ref", is_reference(row[2]), "no readable claim reference"),
              ("status", is_status_word(row[6]), "no readable status word"))
    for name, ok, reason in checks:
        if not ok:
            return BadLine(number, "X", name, reason)
    try:
        fields = json.loads(row[5])
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        return BadLine(number, "X", "fields", "fields are not a JSON object")
    try:
        changed_at = _parse_dt(row[7], f"line {number}")
    except FileFormatError:
        return BadLine(number, "X", "changed_at", "no time with a zone")
    return ExtractRow(number, row[1], row[2].strip(), row[3], row[4], fields,
                      row[6].strip().upper(), changed_at)
