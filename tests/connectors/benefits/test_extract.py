"""The claim extract (records() for reconciliation): every file the format allows read line by line
(hypothesis: odd values set aside naming the line and field, extra columns and unknown line kinds
ignored, quoted line breaks, a broken envelope refused), and AcademyConnector.records() over a
real sshd against the back office's published extract, drift included."""
from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import OutcomeStatus
from connectors.benefits import fileformat as ff
from connectors.errors import PermanentError, TransientError, UnreadableAnswer
from tests.connectors.benefits.harness import AcademyHarness

PROFILE = settings(max_examples=50, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BASE = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def _csv(row: list[str]) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerow(row)
    return out.getvalue().encode()


def _file(rows: list[list[str]], *, count: int | None = None, digest: str | None = None) -> bytes:
    body = _csv(["H", ff.EXTRACT_FILE_TYPE, "1", "CLAIMS_1", BASE.isoformat()])
    body += b"".join(_csv(r) for r in rows)
    return body + _csv(["T", str(len(rows) if count is None else count),
                        digest or hashlib.sha256(body).hexdigest()])


def _lines(data: bytes) -> list[bytes]:
    """The file as ``SftpSession.iter_lines`` gives it: split after each line end."""
    return [line + b"\n" for line in data.split(b"\n")[:-1]] + \
        ([data.rsplit(b"\n", 1)[1]] if not data.endswith(b"\n") else [])


@st.composite
def extracts(draw: st.DrawFn) -> tuple[list[list[str]], list[str | None]]:
    rows, bad = [], []
    for n in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["X", "X", "X", "Z"]))
        fields = {"member_name": draw(st.sampled_from(["Ann", 'with "quotes", and\r\nbreak'])),
                  "action": "joined"}
        row = ["X", f"key-{n}", f"HB{n:07d}", "hb.household_change", "2026-02-02",
               json.dumps(fields), draw(st.sampled_from(["CHANGE_APPLIED", "recalculated"])),
               (BASE + timedelta(minutes=n)).isoformat()]
        row += draw(st.lists(st.sampled_from(["", "v2"]), max_size=2))
        problem = None
        if kind == "Z":
            row = ["Z", "a later line kind"]
        elif draw(st.integers(0, 4)) == 0:
            problem = draw(st.sampled_from(["record_id", "claim_ref", "status", "fields",
                                            "changed_at"]))
            index = {"record_id": 1, "claim_ref": 2, "status": 6, "fields": 5, "changed_at": 7}
            row[index[problem]] = {"fields": "[1]", "changed_at": "2026-03-01T09:00:00"}.get(
                problem, draw(st.sampled_from(["", "<b>x</b>"])))
        rows.append(row)
        bad.append(problem if kind == "X" else "skip")
    return rows, bad


@PROFILE
@given(extracts())
def test_every_line_is_read_or_set_aside(case) -> None:  # noqa: ANN001
    rows, bad = case
    items = list(ff.read_extract(_lines(_file(rows))))
    good = [r for r, b in zip(rows, bad) if b is None]
    read = [i for i in items if isinstance(i, ff.ExtractRow)]
    assert [(i.record_id, i.claim_ref, i.status) for i in read] == [
        (r[1], r[2], r[6].upper()) for r in good]
    assert sorted(i.field for i in items if isinstance(i, ff.BadLine)) == sorted(
        b for b in bad if b not in (None, "skip"))
    for item, row in zip(read, good):
        assert item.fields == json.loads(row[5]) and item.changed_at.tzinfo is not None


@pytest.mark.parametrize("broken", ["count", "digest", "header", "after", "no-trailer"])
def test_a_broken_envelope_fails_the_whole_read(broken: str) -> None:
    rows = [["X", "key-1", "HB0000001", "hb.household_change", "2026-02-02", "{}",
             "CHANGE_APPLIED", BASE.isoformat()]]
    data = {"count": _file(rows, count=2), "digest": _file(rows, digest="0" * 64),
            "header": _file(rows).replace(ff.EXTRACT_FILE_TYPE.encode(), b"ACADEMY-RSP"),
            "after": _file(rows) + _csv(["X", "late"]),
            "no-trailer": _file(rows).rsplit(b"T,", 1)[0]}[broken]
    with pytest.raises(ff.FileFormatError):
        list(ff.read_extract(_lines(data)))


# -- against a real sshd and the back office ---------------------------------------------------

@pytest.mark.sshd
def test_records_come_from_the_published_extract_with_drift(harness: AcademyHarness) -> None:
    connector = harness.connector()
    with pytest.raises(TransientError) as info:
        list(connector.records())
    assert info.value.code == "no-extract"
    commands = [harness.command(n) for n in (1, 2, 3)]
    connector.submit(commands)
    harness.settle()
    outcomes = {u.key: u for u in connector.fetch_updates(BASE - timedelta(days=400))
                if u.resolves is OutcomeStatus.CONFIRMED}
    assert set(outcomes) == {c.key for c in commands}
    office = harness.backoffice
    office.drift_change(commands[0].key, status="SUSPENDED", fields={"member_name": "Changed"})
    office.drift_delete(commands[1].key)
    office.drift_add("stranger-key", like=commands[2].key)
    with pytest.raises(LookupError):
        office.drift_delete("no-such-key")
    assert office.extract_due()
    office.process()
    by_key = {r.key: r for r in harness.connector().records(page_size=1)}
    assert set(by_key) == {commands[0].key, commands[2].key, "stranger-key"}
    changed = by_key[commands[0].key]
    assert (changed.status, changed.fields["member_name"], changed.crm_status) == \
        ("SUSPENDED", "Changed", "open")
    assert by_key[commands[2].key].fields["claim_ref"] == commands[2].payload["claim_ref"]
    assert by_key[commands[2].key].operation == "hb.household_change"
    later = datetime.now(timezone.utc) - timedelta(seconds=5)
    assert set(r.key for r in harness.connector().records(since=later)) >= {"stranger-key"}
    for n in range(10):   # an extract past 1 KiB
        office.drift_add(f"filler-{n}", like=commands[2].key)
    office.process()
    with pytest.raises(UnreadableAnswer) as too_big:
        list(harness.connector(extract_max_bytes=1024).records())
    assert too_big.value.code == "file-too-large"
    with pytest.raises(PermanentError) as bad_size:
        list(harness.connector().records(page_size=0))
    assert bad_size.value.code == "config"
