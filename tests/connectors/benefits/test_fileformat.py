"""The change-of-circumstances file format: round trips, trailer checks, content hashes."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.benefits import fileformat as ff

NOW = datetime(2026, 2, 3, 4, 5, 6, 789, tzinfo=timezone.utc)


def record(n: int, **fields: object) -> ff.ChangeRecord:
    return ff.ChangeRecord(f"key-{n}", f"CRM-{n}", "hb.income_change", f"HB{n:07d}",
                           date(2026, 1, 1 + n), fields or {"amount": "12.50", "note": 'a, "b"\nc'})


def test_change_file_round_trip_keeps_every_field() -> None:
    records = [record(1), record(2, employer="Riverside, Foods", hours_per_week=16.5)]
    parsed = ff.parse_change_file(ff.build_change_file("COC_1", NOW, records))
    assert parsed.file_id == "COC_1" and parsed.created_at == NOW
    assert list(parsed.records) == records


def test_trailer_carries_count_and_sha256_of_the_body() -> None:
    data = ff.build_change_file("COC_1", NOW, [record(1), record(2)])
    body, trailer = data[: data.rstrip(b"\n").rfind(b"\n") + 1], data.splitlines()[-1]
    assert trailer == f"T,2,{ff.sha256_hex(body)}".encode()


@pytest.mark.parametrize("tamper", [
    lambda d: d.replace(b"HB0000001", b"HB0000009"),          # body changed: checksum
    lambda d: d.replace(b"\nT,2,", b"\nT,3,"),                 # wrong count
    lambda d: d[:-20],                                         # truncated trailer
    lambda d: d[: d.rstrip(b"\n").rfind(b"\n") + 1],           # no trailer at all
])
def test_tampered_or_truncated_files_are_refused(tamper) -> None:  # type: ignore[no-untyped-def]
    data = ff.build_change_file("COC_1", NOW, [record(1), record(2)])
    with pytest.raises(ff.FileFormatError):
        ff.parse_change_file(tamper(data))


def test_a_response_file_is_not_read_as_a_change_file() -> None:
    data = ff.build_response_file("RSP_1", NOW)
    with pytest.raises(ff.FileFormatError, match="file type"):
        ff.parse_change_file(data)


def test_content_hash_is_the_same_in_every_file_and_differs_with_content() -> None:
    assert record(1).content_hash == record(1).content_hash
    assert record(1).content_hash != record(1, amount="12.51").content_hash
    first = ff.parse_change_file(ff.build_change_file("A", NOW, [record(1)])).records[0]
    second = ff.parse_change_file(ff.build_change_file("B", NOW, [record(2), record(1)])).records[1]
    assert first.content_hash == second.content_hash


def test_response_file_round_trip() -> None:
    responses = [ff.Response("k1", "h1", ff.ACCEPTED, "HB0000001", "", "", NOW),
                 ff.Response("k2", "h2", ff.REJECTED, "HB9999901", "UNKNOWN_CLAIM", "not known", NOW)]
    changes = [ff.StatusChange("EV1", "HB0000001", "k1", "RECALCULATED", NOW, "benefit recalculated")]
    rejections = [ff.FileRejection("COC_x.csv", "INVALID_FILE", "bad trailer", NOW)]
    parsed = ff.parse_response_file(ff.build_response_file(
        "RSP_1", NOW, responses=responses, status_changes=changes, file_rejections=rejections))
    assert (list(parsed.responses), list(parsed.status_changes), list(parsed.file_rejections)) == \
        (responses, changes, rejections)


def test_answer_identity_ignores_when_it_was_written() -> None:
    early = ff.Response("k1", "h1", ff.ACCEPTED, "HB0000001", "", "", NOW)
    later = ff.Response("k1", "h1", ff.ACCEPTED, "HB0000001", "", "", datetime.now(timezone.utc))
    assert early.content_hash == later.content_hash


@pytest.mark.parametrize(("name", "complete"), [
    ("COC_1.csv", True), (".COC_1.csv.part", False), ("COC_1.csv.part", False),
    (".hidden.csv", False), ("notes.txt", False)])
def test_temporary_names_are_never_complete(name: str, complete: bool) -> None:
    assert ff.is_complete_name(name) is complete
    assert not ff.is_complete_name(ff.temporary_name("COC_1.csv"))


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(st.lists(st.tuples(_text, _text, st.dictionaries(_text, _text | st.integers()), ),
                max_size=5))
def test_any_text_survives_the_csv_round_trip(rows: list[tuple[str, str, dict[str, object]]]) -> None:
    records = [ff.ChangeRecord(f"k{i}-{a}", b, "hb.new_address", "HB0000001", date(2026, 1, 1), f)
               for i, (a, b, f) in enumerate(rows)]
    assert list(ff.parse_change_file(ff.build_change_file("X", NOW, records)).records) == records
