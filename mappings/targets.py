"""Target fields of an operation model: which dotted paths exist and which are required."""
from __future__ import annotations

import collections.abc
import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (unwrapping ``Optional`` and ``Annotated``), if any."""
    if get_origin(annotation) is Annotated:
        return nested_model(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        models = [m for m in (nested_model(a) for a in get_args(annotation)) if m is not None]
        others = [a for a in get_args(annotation)
                  if a is not type(None) and nested_model(a) is None]
        if len(models) == 1 and not others:
            return models[0]
    return None


class UnknownTarget(ValueError):
    """The dotted path is not a field of the operation model."""


def resolve(model: type[BaseModel], target: str) -> tuple[type[BaseModel], str]:
    """The model owning the last segment of ``target``, and that segment; or ``UnknownTarget``."""
    *parents, leaf = target.split(".")
    current = model
    walked: list[str] = []
    for part in parents:
        walked.append(part)
        info = current.model_fields.get(part)
        inner = nested_model(info.annotation) if info is not None else None
        if inner is None:
            if info is not None and list_element(info.annotation) is not None:
                raise UnknownTarget(f"{'.'.join(walked)} is a list: map its element fields "
                                    "under each")
            raise UnknownTarget(f"{'.'.join(walked)} is not an object field of {model.__name__}")
        current = inner
    if leaf not in current.model_fields:
        inner = "" if current is model else f" ({current.__name__} has no field {leaf!r})"
        raise UnknownTarget(f"{target} is not a field of {model.__name__}{inner}")
    if nested_model(current.model_fields[leaf].annotation) is not None:
        raise UnknownTarget(f"{target} is an object: map its fields one by one ({target}.<field>)")
    return current, leaf


def missing_required(model: type[BaseModel], mapped: set[str], prefix: str = "") -> list[str]:
    """Required fields (dotted) not covered by ``mapped``; nested objects count once touched."""
    missing: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = nested_model(info.annotation)
        if inner is not None:
            touched = any(m.startswith(path + ".") for m in mapped)
            if touched:
                missing += missing_required(inner, mapped, path + ".")
            elif info.is_required():
                missing.append(path)
        elif info.is_required() and path not in mapped:
            missing.append(path)
    return missing


@dataclass(frozen=True)
class ListElement:
    """What a list field holds: a model (``tuple[BulkyItem, ...]``) or values (``model`` None)."""

    annotation: Any
    model: type[BaseModel] | None


_SEQUENCES = (list, tuple, set, frozenset, collections.abc.Sequence)


def list_element(annotation: Any) -> ListElement | None:
    """The element of a list field (unwrapping ``Optional`` and ``Annotated``), if it is one."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return list_element(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        found = [e for e in (list_element(a) for a in get_args(annotation)) if e is not None]
        others = [a for a in get_args(annotation)
                  if a is not type(None) and list_element(a) is None]
        return found[0] if len(found) == 1 and not others else None
    if origin not in _SEQUENCES:
        return None
    args = get_args(annotation)
    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            return None   # a fixed-length tuple is not a list
        args = args[:1]
    element = args[0] if args else Any
    return ListElement(annotation=element, model=nested_model(element))
