"""The guard around ``Connector.records()``: it is a stream, so a defect raised while iterating
(after the call returned) must leave as a classified error too, and the helpers it offers."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from connectors.base import BackOfficeRecord, Connector, ConnectorConfig
from connectors.errors import PermanentError, TransientError
from connectors.fields import flat_fields


class _Config(ConnectorConfig):
    pass


class _Base(Connector[_Config]):
    name, domain, default_conn_id, Config, operations = "t", "test", "test_t", _Config, {}

    def check(self) -> None: ...

    def submit(self, commands: Any) -> list: return []

    def fetch_updates(self, since: Any) -> list: return []


def _record(n: int) -> BackOfficeRecord:
    return BackOfficeRecord(reference=f"R{n}", key=f"k{n}", status="OPEN")


class _Generator(_Base):
    def records(self, *, since: Any = None, page_size: int = 500) -> Iterator[BackOfficeRecord]:
        yield _record(1)
        raise KeyError("Alex Smith")   # a defect on the second page


class _ReturnsIterator(_Base):
    def records(self, *, since: Any = None, page_size: int = 500) -> Iterator[BackOfficeRecord]:
        def pages() -> Iterator[BackOfficeRecord]:
            yield _record(1)
            raise AttributeError("Alex Smith")
        self.page_size_for(page_size, maximum=10)
        return pages()


class _Transient(_Base):
    def records(self, *, since: Any = None, page_size: int = 500) -> Iterator[BackOfficeRecord]:
        yield _record(1)
        raise TransientError("page 2 timed out", code="timeout")


@pytest.mark.parametrize("cls", [_Generator, _ReturnsIterator])
def test_a_defect_while_iterating_leaves_classified_without_its_values(cls: type[_Base]) -> None:
    stream = cls(_Config()).records(page_size=5)
    assert next(stream).reference == "R1", "records before the defect are delivered"
    with pytest.raises(PermanentError) as info:
        next(stream)
    assert info.value.code == "internal" and "Alex Smith" not in str(info.value)
    assert "Alex Smith" not in repr(info.value.__cause__)


def test_classified_errors_pass_through_unchanged() -> None:
    stream = _Transient(_Config()).records()
    next(stream)
    with pytest.raises(TransientError) as info:
        next(stream)
    assert info.value.code == "timeout"


def test_a_bad_page_size_is_a_config_error_and_a_large_one_is_capped() -> None:
    for size in (0, -1, True, 2.5):
        with pytest.raises(PermanentError) as info:
            list(_ReturnsIterator(_Config()).records(page_size=size))  # type: ignore[arg-type]
        assert info.value.code == "config" and info.value.field == "page_size"
    connector = _ReturnsIterator(_Config())
    assert connector.page_size_for(11, maximum=10) == 10
    assert connector.page_size_for(3, maximum=10) == 3


def test_a_connector_without_records_says_so() -> None:
    with pytest.raises(NotImplementedError):
        list(_Base(_Config()).records())


class _Inner(BaseModel):
    name: str
    line: str | None = None


class _Outer(BaseModel):
    applicant: _Inner
    tags: list[str]
    on: Any = None


def test_flat_fields_names_nested_values_by_path() -> None:
    import datetime as dt
    model = _Outer(applicant=_Inner(name="A"), tags=["x", "y"], on=dt.date(2026, 1, 2))
    assert flat_fields(model) == {"applicant.name": "A", "applicant.line": None,
                                  "tags": ["x", "y"], "on": "2026-01-02"}
    assert flat_fields({"a": {"b": 1}, "c": None}) == {"a.b": 1, "c": None}


def test_every_shipped_connector_lists_its_records() -> None:
    """The contract suite skips records() checks for a connector without it (it is optional),
    so this is where the shipped connectors are held to it."""
    import importlib

    from connectors.catalog import registered_connectors
    entries = registered_connectors()
    assert {"revenues_northgate", "benefits_academy", "licensing_uniform", "waste_bartec",
            "housing_repairs"} <= set(entries)
    for system_id in ("revenues_northgate", "benefits_academy", "licensing_uniform",
                      "waste_bartec", "housing_repairs"):
        module, _, name = entries[system_id].connector.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert cls.records is not Connector.records, f"{system_id} has no records()"
