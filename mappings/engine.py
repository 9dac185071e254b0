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
           "MappingLoadError", "MappingSet", "matches_type", "same_value"]


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


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from 0 and 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _at(prefix: str, path: str) -> str:
    """A CRM field path as errors name it (``items[2]`` + ``quantity`` -> ``items[2].quantity``)."""
    return f"{prefix}.{path}" if prefix and path else prefix or path


@dataclass(frozen=True)
class InputRule:
    """A declared CRM input field: a value, or a list of values or of objects.

    ``types`` is ``("list",)`` for a list; its elements are objects read by ``element_fields``
    or values of ``element_types``.
    """

    path: str
    types: tuple[str, ...]
    required: bool
    default: Any = None
    one_of: tuple[Any, ...] | None = None
    element_fields: tuple[InputRule, ...] | None = None
    element_types: tuple[str, ...] | None = None

    @property
    def is_list(self) -> bool:
        return self.types == ("list",)

    def read(self, case_type: str, data: Mapping[str, Any], prefix: str = "") -> Any:
        """This input's value (or its default), or ``InvalidCase`` naming the path.

        ``prefix`` locates ``data`` in the case (``items[2]`` for a list element).
        """
        node: Any = data
        parts = self.path.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, Mapping):
                raise InvalidCase(case_type, _at(prefix, ".".join(parts[:i])),
                                  "expected an object")
            node = node.get(part)
            if node is None:
                break
        where = _at(prefix, self.path)
        blank = (isinstance(node, str) and not node.strip()) or (self.is_list and node == [])
        if node is None or (self.required and blank):
            if self.required:
                raise InvalidCase(case_type, where, "required")
            return copy.deepcopy(self.default)
        if self.is_list:
            return self._read_list(case_type, node, where)
        if not matches_type(node, self.types):
            raise InvalidCase(case_type, where, f"expected {' or '.join(self.types)}")
        if self.one_of is not None and not any(same_value(node, v) for v in self.one_of):
            raise InvalidCase(case_type, where, "not one of the values this mapping accepts")
        return node

    def _read_list(self, case_type: str, node: Any, where: str) -> list[Any]:
        if not isinstance(node, (list, tuple)):
            raise InvalidCase(case_type, where, "expected a list")
        elements: list[Any] = []
        for index, element in enumerate(node):
            at = f"{where}[{index}]"
            if self.element_fields is not None:
                if not isinstance(element, Mapping):
                    raise InvalidCase(case_type, at, "expected an object")
                elements.append({rule.path: rule.read(case_type, element, at)
                                 for rule in self.element_fields})
            elif element is None or matches_type(element, self.element_types or ()):
                elements.append(element)
            else:
                raise InvalidCase(case_type, at,
                                  f"expected {' or '.join(self.element_types or ())}")
        return elements


@dataclass(frozen=True)
class Condition:
    """``input`` compared by ``test`` (equals, not_equals, in, present) with ``operand``."""

    input: str
    test: str
    operand: Any

    def holds(self, values: Mapping[str, Any]) -> bool:
        value = values.get(self.input)
        if self.test == "equals":
            return same_value(value, self.operand)
        if self.test == "not_equals":
            return not same_value(value, self.operand)
        if self.test == "in":
            return any(same_value(value, item) for item in self.operand)
        return (value is not None) == bool(self.operand)


def _all_hold(conditions: Sequence[Condition], values: Mapping[str, Any]) -> bool:
    return all(c.holds(values) for c in conditions)


@dataclass(frozen=True)
class FieldRule:
    """How one target field (dotted for nested models) is filled.

    From a list input: ``each`` fills the fields of each element (a list of objects), or, for a
    list of values, ``transforms`` apply to each element. Elements that come out null (or, for
    objects, with every field null) are left out, and so is a list left empty.
    """

    target: str
    source: str | None
    transforms: tuple[Transform, ...] = ()
    constant: Any = None
    default: Any = None
    when: tuple[Condition, ...] = ()
    is_list: bool = False
    each: tuple[FieldRule, ...] | None = None

    def value(self, case_type: str, values: Mapping[str, Any], prefix: str = "") -> Any:
        """The target value (null: leave the field out); ``prefix`` locates ``values``."""
        if self.source is None:
            return copy.deepcopy(self.constant)
        source = values.get(self.source)
        if self.is_list:
            return self.list_value(case_type, source, _at(prefix, self.source))[0]
        try:
            value = run_chain(self.transforms, source)
        except TransformError as exc:
            raise InvalidCase(case_type, _at(prefix, self.source), str(exc)) from exc
        return copy.deepcopy(self.default) if value is None else value

    def list_value(self, case_type: str, elements: Any,
                    where: str) -> tuple[list[Any] | None, list[int]]:
        """The target list and, for each of its elements, the index of the CRM element."""
        if elements is None:
            return None, []
        result: list[Any] = []
        origins: list[int] = []
        for index, element in enumerate(elements):
            at = f"{where}[{index}]"
            if self.each is not None:
                item = _build(case_type, self.each, element, at)
                if not item:
                    continue
            else:
                try:
                    item = run_chain(self.transforms, element)
                except TransformError as exc:
                    raise InvalidCase(case_type, at, str(exc)) from exc
                if item is None:
                    continue
            result.append(item)
            origins.append(index)
        return (result or None), origins

    def source_of(self, loc: Sequence[Any], origins: Mapping[str, list[int]]) -> str | None:
        """The CRM field behind a validation error inside this list field, if it can be told."""
        if not loc or not isinstance(loc[0], int) or self.source is None:
            return None
        position = loc[0]
        known = origins.get(self.target, [])
        at = f"{self.source}[{known[position] if position < len(known) else position}]"
        rest = ".".join(str(p) for p in loc[1:])
        inner = _source_in(self.each, rest) if self.each is not None and rest else None
        return _at(at, inner) if inner else at


def _build(case_type: str, rules: Sequence[FieldRule], values: Mapping[str, Any],
           prefix: str = "", origins: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """The raw (not yet validated) object the rules make of ``values``."""
    raw: dict[str, Any] = {}
    for rule in rules:
        if not _all_hold(rule.when, values):
            continue
        if rule.is_list and rule.source is not None:
            value, found = rule.list_value(case_type, values.get(rule.source),
                                            _at(prefix, rule.source))
            if origins is not None:
                origins[rule.target] = found
        else:
            value = rule.value(case_type, values, prefix)
        if value is None:
            continue
        *parents, leaf = rule.target.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return raw


def _source_in(rules: Sequence[FieldRule], target: str) -> str | None:
    """The source input of the rule filling ``target`` (or a field under it), if any."""
    for rule in rules:
        if rule.target == target:
            return rule.source
    for rule in rules:
        if rule.target.startswith(target + ".") and rule.source:
            return rule.source
    return None


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
        origins: dict[str, list[int]] = {}
        raw = _build(case_type, self.fields, values, origins=origins)
        try:
            model = self.model.model_validate(raw)
            return model.model_dump(mode="json", exclude_unset=True)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            raise InvalidCase(case_type, self._source_of(tuple(first["loc"]), origins),
                              first["msg"]) from exc
        except (ValueError, TypeError) as exc:
            raise InvalidCase(case_type, "data", f"{self.operation}: invalid payload") from exc

    def _source_of(self, loc: tuple[Any, ...], origins: Mapping[str, list[int]]) -> str:
        """The CRM field behind a target field, as near as can be told."""
        if not loc:
            return "data"
        cut = next((i for i, part in enumerate(loc) if isinstance(part, int)), len(loc))
        target = ".".join(str(p) for p in loc[:cut])
        if cut < len(loc):
            rule = next((r for r in self.fields if r.target == target and r.is_list), None)
            found = rule.source_of(loc[cut:], origins) if rule is not None else None
            if found:
                return found
        return _source_in(self.fields, target) or f"{self.step}.{target}"


@dataclass(frozen=True)
class CaseTypeMapping:
    """One loaded mapping file: a CRM case type and the commands it becomes."""

    case_type: str
    description: str
    file: str
    inputs: tuple[InputRule, ...]
    commands: tuple[CommandRule, ...]
    examples: tuple[Mapping[str, Any], ...] = ()
    """CRM case data this case type accepts (the file's ``examples:``), for tests and the guide."""

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
