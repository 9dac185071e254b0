"""The two ways a mapping can fail: a broken YAML file, or CRM data the mapping cannot use."""
from __future__ import annotations


class MappingLoadError(Exception):
    """A mapping file is wrong; the message names the file, the case type and the field at fault."""

    def __init__(self, file: str, reason: str, *, case_type: str | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.case_type = case_type
        self.field = field
        self.reason = reason
        where = [file]
        if case_type is not None:
            where.append(f"case type {case_type}")
        if field is not None:
            where.append(f"field {field}")
        super().__init__(f"{': '.join(where)}: {reason}")


class InvalidCase(Exception):
    """CRM data that a mapping cannot turn into commands; names the field, never its value."""

    def __init__(self, case_type: str, field: str, reason: str) -> None:
        self.case_type = case_type
        self.field = field
        self.reason = reason
        super().__init__(f"{case_type}: field {field}: {reason}")
