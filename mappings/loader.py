"""Load and check the case-type mapping files (``case_types/*.yaml``) into a ``MappingSet``.

Everything a mapping names is checked here, so that a broken file fails at load time with the
file, the case type and the field at fault, never half-way through a batch:
unknown keys, systems, operations, target fields (nested too), undeclared source paths, unknown
transforms and code tables, required target fields left unmapped.

Only the operations modules of systems that the files name are imported.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from connectors import catalog
from mappings import targets
from mappings.engine import (CaseTypeMapping, CommandRule, Condition, FieldRule, InputRule,
                             MappingSet, same_value, matches_type)
from mappings.errors import InvalidCase, MappingLoadError
from mappings.spec import CaseTypeSpec, CommandSpec, ConditionSpec, FieldSpec, InputSpec
from mappings.transforms import SIMPLE, Transform, code_key, lookup

__all__ = ["DEFAULT_DIRECTORY", "InvalidCase", "MappingLoadError", "MappingSet", "load_case_type",
           "load_mappings"]

#: The mapping files shipped with the hub.
DEFAULT_DIRECTORY = Path(__file__).parent / "case_types"

OperationsLookup = Callable[[str], Mapping[str, type[BaseModel]]]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                       deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            repeated = key in seen
        except TypeError:   # an unhashable key: construct_mapping reports it
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _reason(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return str(error["msg"]).removeprefix("Value error, ")


@dataclass(frozen=True)
class _Scope:
    """What field rules are checked against: the inputs they may read and the model they fill."""

    inputs: Mapping[str, InputSpec]
    what: str
    """The operation (or ``<operation> <list field>[]`` for list elements), for messages."""
    model: type[BaseModel]
    inputs_name: str = "inputs"


class _Checker:
    """Turns one parsed file into engine rules, raising ``MappingLoadError`` at the first fault."""

    def __init__(self, file: str, spec: CaseTypeSpec, operations: OperationsLookup) -> None:
        self.file = file
        self.spec = spec
        self.operations = operations

    def fail(self, field: str | None, reason: str) -> MappingLoadError:
        return MappingLoadError(self.file, reason, case_type=self.spec.case_type, field=field)

    def build(self) -> CaseTypeMapping:
        inputs = self._inputs()
        tables = self._code_tables()
        steps: set[str] = set()
        commands = []
        for i, command in enumerate(self.spec.commands):
            where = f"commands[{i}]"
            if command.step in steps:
                raise self.fail(f"{where}.step", f"step {command.step!r} is used twice")
            steps.add(command.step)
            commands.append(self._command(where, command, tables))
        return CaseTypeMapping(case_type=self.spec.case_type, description=self.spec.description,
                               file=self.file, inputs=inputs, commands=tuple(commands),
                               examples=tuple(self.spec.examples))

    def _inputs(self) -> tuple[InputRule, ...]:
        return self._input_rules("inputs", self.spec.inputs, in_list=False)

    def _input_rules(self, where: str, declared: Mapping[str, InputSpec],
                     in_list: bool) -> tuple[InputRule, ...]:
        rules = []
        paths = set(declared)
        for path, decl in declared.items():
            at = f"{where}.{path}"
            parts = path.split(".")
            for n in range(1, len(parts)):
                if ".".join(parts[:n]) in paths:
                    raise self.fail(at, f"{'.'.join(parts[:n])} is declared as a value "
                                        "and as an object")
            if not decl.type:
                raise self.fail(f"{at}.type", "at least one type is needed")
            if "list" in decl.type:
                rules.append(self._list_input(at, path, decl, in_list))
                continue
            if decl.one_of is not None:
                for i, allowed in enumerate(decl.one_of):
                    if allowed is None or not matches_type(allowed, decl.type):
                        raise self.fail(f"{at}.one_of[{i}]",
                                        f"not of type {' or '.join(decl.type)}")
            if "default" in decl.model_fields_set:
                if decl.required:
                    raise self.fail(f"{at}.default", "a required input takes no default")
                if decl.default is not None and not matches_type(decl.default, decl.type):
                    raise self.fail(f"{at}.default", f"not of type {' or '.join(decl.type)}")
                if (decl.default is not None and decl.one_of is not None
                        and not any(same_value(decl.default, v) for v in decl.one_of)):
                    raise self.fail(f"{at}.default", "not one of one_of")
            rules.append(InputRule(path=path, types=tuple(decl.type), required=decl.required,
                                   default=decl.default,
                                   one_of=None if decl.one_of is None else tuple(decl.one_of)))
        return tuple(rules)

    def _list_input(self, at: str, path: str, decl: InputSpec, in_list: bool) -> InputRule:
        if in_list:
            raise self.fail(f"{at}.type", "a list inside a list element is not supported")
        if decl.fields is not None:
            if not decl.fields:
                raise self.fail(f"{at}.fields", "a list of objects needs at least one field")
            elements = self._input_rules(f"{at}.fields", decl.fields, in_list=True)
            return InputRule(path=path, types=("list",), required=decl.required,
                             element_fields=elements)
        if not decl.of:
            raise self.fail(f"{at}.of", "at least one type is needed")
        return InputRule(path=path, types=("list",), required=decl.required,
                         element_types=tuple(decl.of or ()))

    def _code_tables(self) -> dict[str, dict[str, Any]]:
        tables: dict[str, dict[str, Any]] = {}
        for name, table in self.spec.code_tables.items():
            normalised: dict[str, Any] = {}
            for wording, code in table.items():
                key = code_key(wording)
                if not key or key in normalised:
                    raise self.fail(f"code_tables.{name}.{wording}",
                                    "empty, or the same wording twice (case and spaces ignored)")
                normalised[key] = code
            tables[name] = normalised
        return tables

    def _model(self, where: str, command: CommandSpec) -> type[BaseModel]:
        try:
            catalog.entry(command.system)
        except KeyError as exc:
            raise self.fail(f"{where}.system",
                            f"unknown back-office system {command.system!r}") from exc
        try:
            operations = self.operations(command.system)
        except (ImportError, AttributeError) as exc:
            raise self.fail(f"{where}.system", f"the operations of {command.system!r} "
                                               "cannot be imported") from exc
        model = operations.get(command.operation)
        if model is None:
            raise self.fail(f"{where}.operation", f"{command.system} has no operation "
                            f"{command.operation!r}; known: {sorted(operations)}")
        return model

    def _command(self, where: str, command: CommandSpec,
                 tables: Mapping[str, Mapping[str, Any]]) -> CommandRule:
        model = self._model(where, command)
        scope = _Scope(self.spec.inputs, command.operation, model)
        fields = self._fields(f"{where}.fields", scope, command.fields, tables)
        return CommandRule(step=command.step, system=command.system, operation=command.operation,
                           model=model, fields=fields,
                           when=self._conditions(f"{where}.when", command.when, self.spec.inputs))

    def _fields(self, where: str, scope: _Scope, specs: Mapping[str, FieldSpec],
                tables: Mapping[str, Mapping[str, Any]]) -> tuple[FieldRule, ...]:
        """The rules filling one object (a payload or a list element) of ``scope.model``."""
        fields = [self._field(f"{where}.{target}", scope, target, spec, tables)
                  for target, spec in specs.items()]
        mapped = {f.target for f in fields}
        for target in mapped:
            parts = target.split(".")
            for n in range(1, len(parts)):
                if ".".join(parts[:n]) in mapped:
                    raise self.fail(f"{where}.{target}",
                                    f"{'.'.join(parts[:n])} is mapped whole and by field")
        missing = targets.missing_required(scope.model, mapped)
        if missing:
            raise self.fail(f"{where}.{missing[0]}",
                            f"required field of {scope.what} is not mapped")
        return tuple(fields)

    def _field(self, where: str, scope: _Scope, target: str, spec: FieldSpec,
               tables: Mapping[str, Mapping[str, Any]]) -> FieldRule:
        try:
            owner, leaf = targets.resolve(scope.model, target)
        except targets.UnknownTarget as exc:
            raise self.fail(where, str(exc)) from exc
        element = targets.list_element(owner.model_fields[leaf].annotation)
        source = scope.inputs.get(spec.source) if spec.source is not None else None
        if spec.source is not None and source is None:
            raise self.fail(f"{where}.from", f"source {spec.source!r} is not declared in "
                                             f"{scope.inputs_name}")
        when = self._conditions(f"{where}.when", spec.when, scope.inputs, scope.inputs_name)
        if source is not None and "list" in source.type:
            return self._list_field(where, scope, target, spec, source, element, when, tables)
        if spec.each is not None:
            raise self.fail(f"{where}.each", "each needs a from that names a list input")
        if spec.source is not None and element is not None and element.model is not None:
            raise self.fail(f"{where}.from", f"{target} is a list of {element.model.__name__}: "
                                             "map it from a list input with each")
        chain = self._chain(where, spec.transforms, tables)
        return FieldRule(target=target, source=spec.source, transforms=chain,
                         constant=spec.constant, default=spec.default, when=when)

    def _list_field(self, where: str, scope: _Scope, target: str, spec: FieldSpec,
                    source: InputSpec, element: targets.ListElement | None,
                    when: tuple[Condition, ...],
                    tables: Mapping[str, Mapping[str, Any]]) -> FieldRule:
        if element is None:
            raise self.fail(f"{where}.from", f"source {spec.source!r} is a list but {target} "
                                             "is not a list field")
        if source.fields is None:
            if spec.each is not None:
                raise self.fail(f"{where}.each", f"source {spec.source!r} is a list of values: "
                                                 "use transforms (applied to each element)")
            if element.model is not None:
                raise self.fail(f"{where}.from", f"{target} is a list of "
                                                 f"{element.model.__name__}: its source must be "
                                                 "a list of objects (fields)")
            return FieldRule(target=target, source=spec.source, is_list=True, when=when,
                             transforms=self._chain(where, spec.transforms, tables))
        if element.model is None:
            raise self.fail(f"{where}.from", f"source {spec.source!r} is a list of objects but "
                                             f"{target} is a list of values")
        if spec.each is None:
            raise self.fail(f"{where}.each", f"{target} is a list of {element.model.__name__}: "
                                             "map its element fields under each")
        inner = _Scope(source.fields, f"{scope.what} {target}[]", element.model,
                       inputs_name=f"the fields of {spec.source}")
        each = self._fields(f"{where}.each", inner, spec.each, tables)
        return FieldRule(target=target, source=spec.source, is_list=True, each=each, when=when)

    def _chain(self, where: str, items: list[Any],
               tables: Mapping[str, Mapping[str, Any]]) -> tuple[Transform, ...]:
        return tuple(self._transform(f"{where}.transforms[{i}]", item, tables)
                     for i, item in enumerate(items))

    def _transform(self, where: str, item: Any,
                   tables: Mapping[str, Mapping[str, Any]]) -> Transform:
        if isinstance(item, str) and item in SIMPLE:
            return SIMPLE[item]
        if isinstance(item, dict) and list(item) == ["lookup"]:
            name = item["lookup"]
            if not isinstance(name, str) or name not in tables:
                raise self.fail(where, f"code table {name!r} does not exist; "
                                       f"known: {sorted(tables)}")
            return lookup(name, tables[name])
        raise self.fail(where, f"unknown transform {item!r}; known: {sorted(SIMPLE)} "
                               "or {lookup: <code table>}")

    def _conditions(self, where: str, specs: list[ConditionSpec], inputs: Mapping[str, InputSpec],
                    inputs_name: str = "inputs") -> tuple[Condition, ...]:
        conditions = []
        for i, spec in enumerate(specs):
            decl = inputs.get(spec.input)
            if decl is None:
                raise self.fail(f"{where}[{i}].input",
                                f"input {spec.input!r} is not declared in {inputs_name}")
            test = next(iter(spec.model_fields_set & {"equals", "not_equals", "in_", "present"}))
            operand = getattr(spec, test)
            if "list" in decl.type and test != "present":
                raise self.fail(f"{where}[{i}]", f"input {spec.input!r} is a list: only "
                                                 "present can test it")
            if decl.one_of is not None and test != "present":
                for value in operand if test == "in_" else [operand]:
                    if not any(same_value(value, allowed) for allowed in decl.one_of):
                        raise self.fail(f"{where}[{i}]", f"compares {spec.input!r} with a value "
                                                         "not in its one_of")
            conditions.append(Condition(input=spec.input, test=test.rstrip("_"), operand=operand))
        return tuple(conditions)


def load_case_type(path: Path, operations: OperationsLookup | None = None) -> CaseTypeMapping:
    """Read and check one mapping file; ``MappingLoadError`` names what is wrong."""
    file = str(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except OSError as exc:
        raise MappingLoadError(file, "cannot be read") from exc
    except yaml.YAMLError as exc:
        raise MappingLoadError(file, f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise MappingLoadError(file, "must be a YAML mapping (case_type, description, inputs, ...)")
    name = raw.get("case_type") if isinstance(raw.get("case_type"), str) else None
    try:
        spec = CaseTypeSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise MappingLoadError(file, _reason(first), case_type=name,
                               field=_location(first["loc"]) or None) from exc
    if spec.case_type != path.stem:
        raise MappingLoadError(file, f"case_type must match the file name ({path.stem})",
                               case_type=spec.case_type, field="case_type")
    return _Checker(file, spec, operations or catalog.operations).build()


def load_mappings(directory: Path | None = None) -> MappingSet:
    """Every ``*.yaml`` mapping in ``directory`` (default: the shipped ``case_types/``)."""
    folder = Path(directory) if directory is not None else DEFAULT_DIRECTORY
    if not folder.is_dir():
        raise MappingLoadError(str(folder), "is not a directory")
    cache: dict[str, Mapping[str, type[BaseModel]]] = {}

    def operations(system_id: str) -> Mapping[str, type[BaseModel]]:
        if system_id not in cache:
            cache[system_id] = catalog.operations(system_id)
        return cache[system_id]

    loaded = [load_case_type(path, operations) for path in sorted(folder.glob("*.yaml"))]
    return MappingSet({m.case_type: m for m in loaded})
