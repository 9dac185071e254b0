"""CrmStore: versions, the change feed and once-only write-backs, straight on SQLite."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.crm.store import BadCursor, CrmStore, KeyConflict, UnknownCase, decode_cursor


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CrmStore]:
    crm = CrmStore(tmp_path / "crm.sqlite")
    yield crm
    crm.close()


def test_version_goes_up_only_when_data_changes(store: CrmStore) -> None:
    first = store.put_case("C1", "t", {"a": 1, "b": [1, 2]})
    assert (first.created, first.changed, first.case["version"]) == (True, True, 1)
    same = store.put_case("C1", "t", {"b": [1, 2], "a": 1})      # key order does not matter
    assert (same.created, same.changed, same.case["version"]) == (False, False, 1)
    assert same.case["updated_at"] == first.case["updated_at"]
    assert store.put_case("C1", "t", {"a": 2, "b": [1, 2]}).case["version"] == 2
    assert store.put_case("C1", "other", {"a": 2, "b": [1, 2]}).case["version"] == 3


def test_feed_orders_by_change_and_shows_each_case_once(store: CrmStore) -> None:
    for crm_id in ("C1", "C2", "C3"):
        store.put_case(crm_id, "t", {"n": 0})
    store.put_case("C1", "t", {"n": 1})                            # C1 moves to the end
    cases, cursor = store.changes(None, 10)
    assert [(c["crm_id"], c["version"]) for c in cases] == [("C2", 1), ("C3", 1), ("C1", 2)]
    assert store.changes(cursor, 10) == ([], cursor)
    page, after_first = store.changes(None, 1)
    assert [c["crm_id"] for c in page] == ["C2"]
    assert [c["crm_id"] for c in store.changes(after_first, 10)[0]] == ["C3", "C1"]


def test_cursor_is_opaque_and_checked(store: CrmStore) -> None:
    store.put_case("C1", "t", {})
    _, cursor = store.changes(None, 10)
    assert cursor and not cursor.isdigit()
    assert decode_cursor(cursor) == 1
    for bad in ("12", "!!", "eHl6OjE"):   # "xyz:1" in base64
        with pytest.raises(BadCursor):
            store.changes(bad, 10)


def test_write_back_applies_once_per_key(store: CrmStore) -> None:
    store.put_case("C1", "t", {})
    assert store.apply_update("C1", "k1", "in_progress", "Sent", None, None) is True
    assert store.apply_update("C1", "k1", "in_progress", "Sent", None, None) is False
    assert store.apply_update("C1", "k2", "completed", "Done", "CT1", "revenues") is True
    assert store.apply_update("C1", "k3", "completed", "", None, None) is True
    case = store.get_case("C1")
    assert (case["status"], case["backoffice_reference"], case["version"]) == \
        ("completed", "CT1", 1), "a later update without a reference keeps the earlier one"
    assert [n["text"] for n in case["notes"]] == ["Sent", "Done"]
    assert [u["idempotency_key"] for u in store.updates("C1")] == ["k1", "k2", "k3"]
    assert store.changes(None, 10)[0][0]["version"] == 1
    stats = store.stats()
    assert stats["writebacks_applied"] == 3
    assert stats["writebacks_by_status"] == {"in_progress": 1, "completed": 2}


def test_write_back_errors(store: CrmStore) -> None:
    store.put_case("C1", "t", {})
    store.put_case("C2", "t", {})
    with pytest.raises(UnknownCase):
        store.apply_update("C9", "k", "completed", "", None, None)
    with pytest.raises(UnknownCase):
        store.updates("C9")
    store.apply_update("C1", "k", "completed", "", None, None)
    with pytest.raises(KeyConflict):
        store.apply_update("C2", "k", "completed", "", None, None)
    assert store.updates("C2") == []


def test_concurrent_write_backs_with_one_key_apply_once(store: CrmStore) -> None:
    store.put_case("C1", "t", {})
    results: list[bool] = []
    lock = threading.Lock()

    def send() -> None:
        applied = store.apply_update("C1", "same-key", "completed", "Done", None, None)
        with lock:
            results.append(applied)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert len(store.updates("C1")) == 1
