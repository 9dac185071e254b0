"""The YAML format of a case-type mapping, as pydantic models (syntax only).

The loader checks the meaning (systems, operations, target fields, source paths, transforms, code
tables) after these models have accepted the shape. See docs/mappings.md for the format.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr,
                      field_validator, model_validator)

NAME = r"^[a-z][a-z0-9_]*$"
PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"

InputType = Literal["string", "integer", "number", "boolean", "date"]
ValueType = Literal["string", "integer", "number", "boolean", "date", "list"]
Scalar = StrictStr | StrictBool | StrictInt | float | None


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class InputSpec(_Spec):
    """One CRM input field, by dotted path; ``type: list`` declares a list of values or objects."""

    type: list[ValueType]
    required: StrictBool = False
    default: Any = None
    """Used when the CRM leaves the field out or null (only for optional, non-list inputs)."""
    one_of: list[Scalar] | None = None
    """The only values the CRM may send (checked after the type); anything else is invalid."""
    fields: dict[Annotated[StrictStr, Field(pattern=PATH)], "InputSpec"] | None = None
    """A list of objects: each element's fields, by dotted path inside the element."""
    of: list[InputType] | None = None
    """A list of values: the type(s) of each element."""
    description: StrictStr | None = None

    @field_validator("type", "of", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _list_shape(self) -> "InputSpec":
        if "list" in self.type:
            if self.type != ["list"]:
                raise ValueError("a list input has type list and no other type")
            if (self.fields is None) == (self.of is None):
                raise ValueError("a list input needs exactly one of fields (a list of objects) "
                                 "or of (a list of values)")
            if {"default", "one_of"} & self.model_fields_set:
                raise ValueError("a list input takes no default or one_of (declare them on "
                                 "its element fields)")
        elif self.fields is not None or self.of is not None:
            raise ValueError("fields and of are only for inputs of type list")
        return self


class ConditionSpec(_Spec):
    """``input`` compared with exactly one of ``equals``, ``not_equals``, ``in``, ``present``.

    The shorthand ``when: leaving_area`` means ``{input: leaving_area, equals: true}``.
    """

    input: Annotated[StrictStr, Field(pattern=PATH)]
    equals: Scalar = None
    not_equals: Scalar = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    present: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"input": value, "equals": True} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_test(self) -> "ConditionSpec":
        tests = self.model_fields_set & {"equals", "not_equals", "in_", "present"}
        if len(tests) != 1:
            raise ValueError("a condition needs exactly one of equals, not_equals, in, present")
        return self


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, (str, dict)) else value


class FieldSpec(_Spec):
    """How one target field is filled: from a CRM input (with transforms) or a constant.

    The shorthand ``account_ref: account_reference`` means ``{from: account_reference}``.
    A target that is a list of objects, fed from a list input, maps each element's fields
    under ``each`` (element target field -> rule reading element input fields).
    """

    source: Annotated[StrictStr, Field(pattern=PATH)] | None = Field(default=None, alias="from")
    constant: Any = None
    default: Any = None
    transforms: list[Any] = []
    when: list[ConditionSpec] = []
    each: dict[StrictStr, "FieldSpec"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"from": value} if isinstance(value, str) else value

    @field_validator("when", mode="before")
    @classmethod
    def _when_list(cls, value: Any) -> Any:
        return _as_list(value)

    @model_validator(mode="after")
    def _source_or_constant(self) -> "FieldSpec":
        has_constant = "constant" in self.model_fields_set
        if (self.source is None) == (not has_constant):
            raise ValueError("a field needs exactly one of from, constant")
        if has_constant and ({"default", "transforms", "each"} & self.model_fields_set):
            raise ValueError("a constant field takes no default, transforms or each")
        if self.each is not None and ({"default", "transforms"} & self.model_fields_set):
            raise ValueError("a field with each takes no default or transforms (put them on "
                             "the element fields)")
        return self


class CommandSpec(_Spec):
    """One back-office operation the case becomes."""

    step: Annotated[StrictStr, Field(pattern=NAME, max_length=24)]
    system: StrictStr
    operation: StrictStr
    description: StrictStr | None = None
    when: list[ConditionSpec] = []
    fields: dict[StrictStr, FieldSpec]

    @field_validator("when", mode="before")
    @classmethod
    def _when_list(cls, value: Any) -> Any:
        return _as_list(value)


class CaseTypeSpec(_Spec):
    """A whole mapping file: one CRM case type."""

    case_type: Annotated[StrictStr, Field(pattern=NAME, max_length=64)]
    description: StrictStr
    inputs: dict[Annotated[StrictStr, Field(pattern=PATH)], InputSpec]
    code_tables: dict[Annotated[StrictStr, Field(pattern=NAME)],
                      dict[StrictStr, StrictStr | StrictInt]] = {}
    commands: Annotated[list[CommandSpec], Field(min_length=1)]
    examples: list[dict[StrictStr, Any]] = []
    """CRM case data (``data`` of a case) this case type accepts: the tests map every example,
    so a new mapping is tested without editing a list of cases."""
