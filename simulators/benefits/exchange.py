"""The back office's own reading and writing of the change-of-circumstances files.

Written from the format as documented for the council (docs/connectors/benefits.md, "File
format"), not from the hub's connector, so that a connector that misreads the format fails against
this simulator instead of agreeing with itself. The back office reads inbound ``ACADEMY-COC`` files
and writes outbound ``ACADEMY-RSP`` files:

    H,<file type>,1,<file id>,<created at, ISO-8601 UTC>
    ...record lines...
    T,<number of record lines>,<SHA-256 hex of every byte before the trailer line>

UTF-8, RFC 4180 (CRLF line ends, fields quoted when needed).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

INBOUND_TYPE = "ACADEMY-COC"
OUTBOUND_TYPE = "ACADEMY-RSP"
EXTRACT_TYPE = "ACADEMY-EXT"
VERSION = "1"
SUFFIX = ".csv"

ACCEPTED = "ACCEPTED"
REJECTED = "REJECTED"


class BadFile(ValueError):
    """An inbound file the back office refuses as a whole; ``code`` goes in its ``F`` line."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def is_ready(name: str) -> bool:
    """A finished exchange file: ``*.csv``, not a dot-file nor a ``.part`` file."""
    return name.endswith(SUFFIX) and not name.startswith(".") and not name.endswith(".part")


def partial_name(name: str) -> str:
    """The temporary name a file is written under before the rename: ``.<name>.part``."""
    return f".{name}.part"


def stamp(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and an explicit offset."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def canonical_json(value: Any) -> str:
    """Keys sorted, no spaces, UTF-8 text (not ASCII-escaped)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Change:
    """One ``D`` line of an inbound file."""

    line: int
    record_id: str
    case_ref: str
    change_type: str
    claim_ref: str
    effective: date
    fields: dict[str, Any]

    @property
    def content_hash(self) -> str:
        """SHA-256 of ``[record id, change type, claim ref, effective date, fields]``."""
        content = [self.record_id, self.change_type, self.claim_ref, self.effective.isoformat(),
                   self.fields]
        return sha256(canonical_json(content).encode("utf-8"))


def read_inbound(data: bytes) -> list[Change]:
    """Check an inbound file's envelope and read its ``D`` lines, or raise ``BadFile``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadFile("INVALID_FILE", "file is not UTF-8") from exc
    if not text.endswith("\n"):
        raise BadFile("INVALID_FILE", "no complete trailer line")
    cut = text.rfind("\n", 0, len(text) - 1) + 1
    head, trailer_text = text[:cut], text[cut:]
    body = head.encode("utf-8")
    try:
        rows = list(csv.reader(io.StringIO(head, newline="")))
        trailer = next(csv.reader([trailer_text.rstrip("\r\n")]))
    except csv.Error as exc:
        raise BadFile("INVALID_FILE", "file is not CSV") from exc
    if len(trailer) != 3 or trailer[0] != "T":
        raise BadFile("INVALID_FILE", "last line is not a trailer")
    if trailer[2] != sha256(body):
        raise BadFile("INVALID_FILE", "trailer checksum does not match")
    if not rows or len(rows[0]) != 5 or rows[0][0] != "H":
        raise BadFile("INVALID_FILE", "first line is not a header")
    if rows[0][1] != INBOUND_TYPE or rows[0][2] != VERSION:
        raise BadFile("INVALID_FILE", "not an ACADEMY-COC version 1 file")
    if trailer[1] != str(len(rows) - 1):
        raise BadFile("INVALID_FILE", "trailer count does not match")
    changes = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 7 or row[0] != "D":
            raise BadFile("INVALID_FILE", f"line {number} is not a D line of 7 columns")
        try:
            effective = date.fromisoformat(row[5])
            fields = json.loads(row[6])
        except ValueError as exc:
            raise BadFile("INVALID_FILE", f"line {number}: bad effective date or fields") from exc
        if not isinstance(fields, dict):
            raise BadFile("INVALID_FILE", f"line {number}: fields are not a JSON object")
        changes.append(Change(number, row[1], row[2], row[3], row[4], effective, fields))
    return changes


def write_outbound(file_id: str, created_at: datetime, rows: Iterable[list[str]]) -> bytes:
    """An ``ACADEMY-RSP`` file: header, the given ``F``/``R``/``S`` rows, trailer."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["H", OUTBOUND_TYPE, VERSION, file_id, stamp(created_at)])
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    body = out.getvalue().encode("utf-8")
    trailer = io.StringIO(newline="")
    csv.writer(trailer, lineterminator="\r\n").writerow(["T", str(count), sha256(body)])
    return body + trailer.getvalue().encode("utf-8")


def write_extract(file_id: str, created_at: datetime, rows: Iterable[list[str]], out: Any) -> int:
    """Stream an ``ACADEMY-EXT`` file (header, ``X`` rows, trailer) into the binary file ``out``,
    hashing as it goes (the extract may be large); returns the number of rows."""
    digest = hashlib.sha256()

    def emit(row: list[str], hashed: bool = True) -> None:
        line = io.StringIO(newline="")
        csv.writer(line, lineterminator="\r\n").writerow(row)
        data = line.getvalue().encode("utf-8")
        if hashed:
            digest.update(data)
        out.write(data)

    emit(["H", EXTRACT_TYPE, VERSION, file_id, stamp(created_at)])
    count = 0
    for row in rows:
        emit(row)
        count += 1
    emit(["T", str(count), digest.hexdigest()], hashed=False)
    return count


def extract_row(record_id: str, claim_ref: str, change_type: str, effective: str,
                fields_json: str, status: str, changed_at: datetime) -> list[str]:
    """``X,<record id>,<claim ref>,<change type>,<effective date>,<fields JSON>,<status>,
    <changed at>``: one change the back office holds, as it holds it now."""
    return ["X", record_id, claim_ref, change_type, effective, fields_json, status,
            stamp(changed_at)]


def answer_row(record_id: str, record_hash: str, result: str, claim_ref: str, reason_code: str,
               reason: str, answered_at: datetime) -> list[str]:
    """``R,<record id>,<record content hash>,<result>,<claim ref>,<reason code>,<reason>,<at>``."""
    return ["R", record_id, record_hash, result, claim_ref, reason_code, reason, stamp(answered_at)]


def staff_change_row(event_id: str, claim_ref: str, record_id: str, status: str,
                     changed_at: datetime, note: str) -> list[str]:
    """``S,<event id>,<claim ref>,<record id or empty>,<status>,<changed at>,<note>``."""
    return ["S", event_id, claim_ref, record_id, status, stamp(changed_at), note]


def refused_file_row(file_name: str, code: str, reason: str, at: datetime) -> list[str]:
    """``F,<inbound file name>,<reason code>,<reason>,<answered at>``."""
    return ["F", file_name, code, reason, stamp(at)]
