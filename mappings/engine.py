"""The pure mapping engine: a CRM case (type, id, version, data) -> back-office commands.

Built by ``mappings.loader.load_mappings`` from the YAML files; applying a mapping does no I/O.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError

from connectors.base import Command
from mappings.errors import InvalidCase, MappingLoadError
from mappings.keys import command_key
from mappings.transforms import Transform, TransformError, iso_date, run_chain

__all__ = ["CaseTypeMapping", "CommandRule", "Condition", "FieldRule", "InputRule", "InvalidCase",
           "MappingLoadError", "MappingSet", "matches_type"]


def _is_date(value: Any) -> bool:
    if isinstance(value, date):
        return True
    try:
        iso_date(value)
    except TransformError:
        return False
    return True


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                         and math.isfinite(v)),
    "boolean": lambda v: isinstance(v, bool),
    "date": _is_date,
}


def matches_type(value: Any, types: Sequence[str]) -> bool:
    """Whether a (non-null) input value is of one of the declared input types."""
    return any(_TYPE_CHECKS[t](value) for t in types)


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from 0 and 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


@dataclass(frozen=True)
class InputRule:
    """A declared CRM input field."""

    path: str
    types: tuple[str, ...]
    required: bool
    default: Any = None

    def read(self, case_type: str, data: Mapping[str, Any]) -> Any:
        """This input's value (or its default), or ``InvalidCase`` naming the path."""
        node: Any = data
        parts = self.path.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, Mapping):
                raise InvalidCase(case_type, ".".join(parts[:i]), "expected an object")
            node = node.get(part)
            if node is None:
                break
        if node is None or (self.required and isinstance(node, str) and not node.strip()):
            if self.required:
                raise InvalidCase(case_type, self.path, "required")
            return copy.deepcopy(self.default)
        if not matches_type(node, self.types):
            raise InvalidCase(case_type, self.path, f"expected {' or '.join(self.types)}")
        return node


@dataclass(frozen=True)
class Condition:
    """``input`` compared by ``test`` (equals, not_equals, in, present) with ``operand``."""

    input: str
    test: str
    operand: Any

    def holds(self, values: Mapping[str, Any]) -> bool:
        value = values.get(self.input)
        if self.test == "equals":
            return _same(value, self.operand)
        if self.test == "not_equals":
            return not _same(value, self.operand)
        if self.test == "in":
            return any(_same(value, item) for item in self.operand)
        return (value is not None) == bool(self.operand)


def _all_hold(conditions: Sequence[Condition], values: Mapping[str, Any]) -> bool:
    return all(c.holds(values) for c in conditions)


@dataclass(frozen=True)
class FieldRule:
    """How one target field (dotted for nested models) is filled."""

    target: str
    source: str | None
    transforms: tuple[Transform, ...] = ()
    constant: Any = None
    default: Any = None
    when: tuple[Condition, ...] = ()

    def value(self, case_type: str, values: Mapping[str, Any]) -> Any:
        if self.source is None:
            return copy.deepcopy(self.constant)
        try:
            value = run_chain(self.transforms, values.get(self.source))
        except TransformError as exc:
            raise InvalidCase(case_type, self.source, str(exc)) from exc
        return copy.deepcopy(self.default) if value is None else value


@dataclass(frozen=True)
class CommandRule:
    """One operation on one back-office system that a case becomes."""

    step: str
    system: str
    operation: str
    model: type[BaseModel]
    fields: tuple[FieldRule, ...]
    when: tuple[Condition, ...] = ()

    def payload(self, case_type: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The validated payload (JSON-ready), or ``InvalidCase`` naming the CRM field."""
        raw: dict[str, Any] = {}
        for rule in self.fields:
            if not _all_hold(rule.when, values):
                continue
            value = rule.value(case_type, values)
            if value is None:
                continue
            *parents, leaf = rule.target.split(".")
            node = raw
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        try:
            model = self.model.model_validate(raw)
            return model.model_dump(mode="json", exclude_unset=True)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            target = ".".join(str(p) for p in first["loc"])
            raise InvalidCase(case_type, self._source_of(target), first["msg"]) from exc
        except (ValueError, TypeError) as exc:
            raise InvalidCase(case_type, "data", f"{self.operation}: invalid payload") from exc

    def _source_of(self, target: str) -> str:
        """The CRM field behind a target field, as near as can be told."""
        if not target:
            return "data"
        for rule in self.fields:
            if rule.target == target:
                return rule.source or f"{self.step}.{target}"
        for rule in self.fields:
            if rule.target.startswith(target + ".") and rule.source:
                return rule.source
        return f"{self.step}.{target}"


@dataclass(frozen=True)
class CaseTypeMapping:
    """One loaded mapping file: a CRM case type and the commands it becomes."""

    case_type: str
    description: str
    file: str
    inputs: tuple[InputRule, ...]
    commands: tuple[CommandRule, ...]

    def systems(self) -> list[str]:
        """The back-office systems this case type can reach, in command order."""
        return list(dict.fromkeys(c.system for c in self.commands))

    def read_inputs(self, data: Any) -> dict[str, Any]:
        """Every declared input's value, checked for presence and type."""
        if not isinstance(data, Mapping):
            raise InvalidCase(self.case_type, "data", "expected an object")
        return {rule.path: rule.read(self.case_type, data) for rule in self.inputs}

    def apply(self, crm_id: str, version: int, data: Mapping[str, Any]) -> list[Command]:
        """The commands for one version of a CRM case (keys do not depend on ``version``)."""
        if not isinstance(crm_id, str) or not crm_id.strip():
            raise InvalidCase(self.case_type, "crm_id", "required")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise InvalidCase(self.case_type, "version", "expected a whole number >= 0")
        values = self.read_inputs(data)
        commands: list[Command] = []
        for rule in self.commands:
            if not _all_hold(rule.when, values):
                continue
            payload = rule.payload(self.case_type, values)
            try:
                key = command_key(crm_id, rule.step, payload)
            except ValueError as exc:
                raise InvalidCase(self.case_type, "data", "payload is not JSON") from exc
            commands.append(Command(key=key, system=rule.system, operation=rule.operation,
                                    payload=payload, case_ref=crm_id))
        return commands


class MappingSet:
    """Every loaded case type; the hub asks it which commands a CRM case becomes."""

    def __init__(self, mappings: Mapping[str, CaseTypeMapping]) -> None:
        self._mappings = dict(sorted(mappings.items()))

    @property
    def case_types(self) -> list[str]:
        return list(self._mappings)

    def mapping(self, case_type: str) -> CaseTypeMapping:
        """The loaded mapping of a case type, or ``InvalidCase(field="case_type")``."""
        try:
            return self._mappings[case_type]
        except (KeyError, TypeError) as exc:
            name = case_type if isinstance(case_type, str) else "?"
            raise InvalidCase(name, "case_type", "no mapping for this case type") from exc

    def systems_for(self, case_type: str) -> list[str]:
        """Back-office systems a case type can produce commands for."""
        return self.mapping(case_type).systems()

    def apply(self, case_type: str, crm_id: str, version: int,
              data: Mapping[str, Any]) -> list[Command]:
        """The commands for a CRM case; ``InvalidCase`` naming the CRM field when it is unusable."""
        return self.mapping(case_type).apply(crm_id, version, data)
