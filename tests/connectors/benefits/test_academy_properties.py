"""Property: the Academy connector reads every response file the format allows (optional columns
empty, extra trailing columns, line kinds it does not know, any order of lines, several files),
sets aside each bad line with a finding naming the file, the line and the field, and uses the
rest. Runs ``fetch_updates`` over an in-memory SFTP folder (the real transport is tested against
a real sshd elsewhere)."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import paramiko
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.benefits.academy import AcademyConfig, AcademyConnector
from connectors.errors import PermanentError, UnreadableAnswer

BASE = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
PROFILE = settings(max_examples=50, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class MemorySftp:
    """The few SftpSession calls fetch_updates makes, over a dict of paths."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def list_files(self, folder: str) -> list[paramiko.SFTPAttributes]:
        out = []
        for path, data in sorted(self.files.items()):
            if path.rpartition("/")[0] == folder:
                attrs = paramiko.SFTPAttributes()
                attrs.filename, attrs.st_size, attrs.st_mtime = path.rpartition("/")[2], len(data), 0
                attrs.st_mode = stat.S_IFREG | 0o644
                out.append(attrs)
        return out

    def read(self, path: str, *, max_bytes: int | None = None) -> bytes:
        if path not in self.files:
            raise PermanentError("no such file", code="no-such-path")
        data = self.files[path]
        if max_bytes is not None and len(data) > max_bytes:
            raise UnreadableAnswer("file is over the limit", code="file-too-large")
        return data

    def rename(self, source: str, target: str) -> None:
        self.files[target] = self.files.pop(source)

    def write_atomic(self, data: bytes, temp: str, final: str) -> None:
        self.files[final] = data

    def make_folder(self, path: str) -> None:
        return None

    def remove(self, path: str) -> None:
        self.files.pop(path, None)


@contextlib.contextmanager
def _session(memory: MemorySftp) -> Iterator[MemorySftp]:
    yield memory


def connector(memory: MemorySftp) -> AcademyConnector:
    academy = AcademyConnector(AcademyConfig(host="sftp.test", username="u", password="p",
                                             host_key="ssh-ed25519 AAAA", retry_attempts=1))
    academy._session = lambda: _session(memory)  # type: ignore[method-assign]
    return academy


@dataclass
class Line:
    row: list[str]
    bad_field: str | None = None

    @property
    def kind(self) -> str:
        return self.row[0]


def _stamp(draw: st.DrawFn) -> str:
    moment = BASE + timedelta(seconds=draw(st.integers(-3600, 3600)),
                              microseconds=draw(st.integers(0, 999999)))
    return draw(st.sampled_from([moment.isoformat(), moment.isoformat(timespec="seconds")]))


@st.composite
def lines(draw: st.DrawFn, n: int) -> Line:
    kind = draw(st.sampled_from(["R", "R", "S", "F", "W"]))
    extra = draw(st.lists(st.sampled_from(["", "v2 column", "9"]), max_size=2))
    if kind == "R":
        accepted = draw(st.booleans())
        row = ["R", f"key-{n}", hashlib.sha256(str(n).encode()).hexdigest(),
               "ACCEPTED" if accepted else "REJECTED", f"HB{n:07d}",
               "" if accepted else draw(st.sampled_from(["UNKNOWN_CLAIM", "CLAIM_CLOSED"])),
               draw(st.sampled_from(["", "claim not known", "with, a comma"])), _stamp(draw)]
    elif kind == "S":
        row = ["S", f"EV{n}", f"HB{n:07d}", draw(st.sampled_from(["", f"key-{n}"])),
               draw(st.sampled_from(["RECALCULATED", "UNDER_REVIEW"])), _stamp(draw),
               draw(st.sampled_from(["", "benefit recalculated", 'a "quoted" note']))]
    elif kind == "F":
        row = ["F", f"COC_{n}.csv", "INVALID_FILE", "bad trailer", _stamp(draw)]
    else:
        return Line(["W", "a line kind from a later version", "ignored"])
    line = Line(row + extra)
    if draw(st.integers(0, 4)) == 0:   # break a needed value
        breaks = {"R": [(1, "record_id", ""), (3, "result", "MAYBE"), (7, "answered_at", "soon")],
                  "S": [(1, "event_id", ""), (2, "claim_ref", "None"), (4, "status", ""),
                        (5, "changed_at", "")],
                  "F": [(4, "answered_at", "yesterday")]}[kind]
        column, field, value = draw(st.sampled_from(breaks))
        line.row[column] = value
        line.bad_field = field
        if kind == "R" and field == "result":
            line.row = line.row[:8]   # keep the extra columns out of the oracle's way
    return line


def _file(name: str, rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["H", "ACADEMY-RSP", "1", name, BASE.isoformat()])
    for row in rows:
        writer.writerow(row)
    body = out.getvalue().encode()
    return body + f"T,{len(rows)},{hashlib.sha256(body).hexdigest()}\r\n".encode()


@st.composite
def outbound(draw: st.DrawFn) -> dict[str, list[Line]]:
    files = {}
    for f in range(draw(st.integers(1, 3))):
        count = draw(st.integers(0, 6))
        files[f"RSP_{f}.csv"] = [draw(lines(f * 10 + n)) for n in range(count)]
    return files


@PROFILE
@given(outbound())
def test_every_good_line_is_read_and_every_bad_line_named(files) -> None:  # noqa: ANN001
    memory = MemorySftp({f"outbound/{name}": _file(name, [l.row for l in body])
                         for name, body in files.items()})
    academy = connector(memory)
    findings: list = []
    academy.report = findings.append
    updates = academy.fetch_updates(BASE - timedelta(days=1))
    expected_answers = {l.row[1] for body in files.values() for l in body
                        if l.kind == "R" and l.bad_field is None}
    expected_changes = {l.row[1] for body in files.values() for l in body
                        if l.kind == "S" and l.bad_field is None}
    assert {u.key for u in updates if u.resolves is not None} == expected_answers
    assert len([u for u in updates if u.resolves is None]) == len(expected_changes)
    for update in updates:
        assert update.changed_at.tzinfo is not None and update.reference
    expected_bad = sorted((name, number, l.bad_field) for name, body in files.items()
                          for number, l in enumerate(body, start=2) if l.bad_field)
    assert sorted((f.entry.split(" line ")[0], int(f.entry.split(" line ")[1]), f.field)
                  for f in findings) == expected_bad
    assert all(f.kind == "entry_set_aside" for f in findings)
    assert not any(p.startswith("quarantine/") for p in memory.files), "no file quarantined"
