"""The back-office systems the hub serves: registered connectors and their instances.

Two registers, both read without importing a connector or a transport library:

- **Connectors** register under the Python entry-point group ``council_hub.connectors``: the
  entry point's name is the system id the class declares (``<domain>_<system>``), its value the
  class (``module:Class``). The shipped ones are in this repository's ``pyproject.toml``; a
  council's own package declares its own the same way and is found once installed. A connector's
  operation models are the ``OPERATIONS`` of the ``operations`` module next to it
  (``connectors.waste.bartec`` -> ``connectors.waste.operations:OPERATIONS``), unless an instance
  names its own (``operations: module:NAME``: a second system in a package that has one).
- **Instances** are what the hub actually talks to: one connector class may serve several
  (two councils' Bartec tenants, domestic and trade waste), each with its own Airflow Connection,
  owning team, schedules and DAGs. They are declared in one YAML file (``instances.yaml`` next to
  this module, or the file named by ``HUB_INSTANCES``) and checked with pydantic when it is read;
  a bad entry is an ``InstancesError`` naming the instance and the field.

Everywhere else in the hub a "system" is an instance id: the ledger's ``system`` column, the
per-system asset ``hub://ledger/commands/<instance>``, the DAG ids ``<instance>`` and
``<instance>_status_sync``, work-item teams, and a mapping's ``system:``.
"""
from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

if TYPE_CHECKING:
    from connectors.base import Connector

ENTRY_POINT_GROUP = "council_hub.connectors"
INSTANCES_ENV = "HUB_INSTANCES"
DEFAULT_INSTANCES = Path(__file__).with_name("instances.yaml")
_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
SYSTEM_ID = r"[a-z][a-z0-9]*_[a-z0-9_]*[a-z0-9]"
_SYSTEM_ID = re.compile(SYSTEM_ID)
MAX_INSTANCES_BYTES = 1024 * 1024


class InstancesError(ValueError):
    """The instances file cannot be used; the message names the file, instance and field."""


@dataclass(frozen=True)
class ConnectorEntry:
    """One registered connector class (an entry point), never imported to be listed."""

    connector_id: str
    """The system id the class declares (``waste_bartec``): the entry point's name."""
    connector: str
    """``module:Class`` of the connector."""

    @property
    def domain(self) -> str:
        return self.connector_id.partition("_")[0]

    @property
    def operations(self) -> str:
        """``module:OPERATIONS`` of its operation models (the ``operations`` module next to it)."""
        module = self.connector.partition(":")[0]
        return f"{module.rpartition('.')[0] or module}.operations:OPERATIONS"


@dataclass(frozen=True)
class SystemEntry:
    """One instance of a connector: what the hub sends to, syncs from and reports on."""

    system_id: str
    """The instance id (``waste_bartec_trade``): ledger ``system``, DAG ids, asset URIs."""
    domain: str
    connector: str
    """``module:Class`` of the connector."""
    operations: str
    """``module:NAME`` of its operation-model mapping (light: pydantic only)."""
    team: str
    """The back-office team that receives its work items."""
    connector_id: str = ""
    """The registered connector it is an instance of."""
    conn_id: str = ""
    """Its Airflow Connection id."""
    dispatch: str = "*/10 * * * *"
    """Cron of its dispatch DAG (it also starts on its commands asset)."""
    status_sync: str = "*/15 * * * *"
    """Cron of its status-sync DAG."""
    reconcile: str = "15 1 * * *"
    """Cron of its reconciliation DAG (nightly; also triggered on demand)."""
    description: str = ""


# -- the instances file ---------------------------------------------------------------------

_Cron = Annotated[str, Field(pattern=r"^\S+( \S+){4}$", max_length=100)]


class InstanceSpec(BaseModel):
    """One entry of the instances file (every key but ``connector`` is optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connector: Annotated[str, Field(min_length=3, max_length=200)]
    """A registered connector id (``waste_bartec``), or ``module:Class``."""
    conn_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=200)] | None = None
    """Default: the instance id."""
    team: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)] | None = None
    """Default: the connector's domain."""
    dispatch: _Cron = "*/10 * * * *"
    status_sync: _Cron = "*/15 * * * *"
    reconcile: _Cron = "15 1 * * *"
    description: Annotated[str, Field(max_length=500)] = ""
    operations: Annotated[str, Field(pattern=r"^[\w.]+:\w+$", max_length=200)] | None = None
    """``module:NAME`` of its operation models; default: the ``operations`` module next to the
    connector (``OPERATIONS``)."""

    @field_validator("connector")
    @classmethod
    def _connector_form(cls, value: str) -> str:
        if not (_SYSTEM_ID.fullmatch(value) or re.fullmatch(r"[\w.]+:\w+", value)):
            raise ValueError("must be a registered connector id or module:Class")
        return value


class InstancesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instances: dict[str, InstanceSpec]


def instances_path() -> Path:
    """``HUB_INSTANCES`` when set, else the shipped ``connectors/instances.yaml``."""
    return Path(os.environ.get(INSTANCES_ENV) or DEFAULT_INSTANCES)


class _UniqueKeys(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice (the second would silently win)."""


def _no_duplicates(loader: _UniqueKeys, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise InstancesError(f"key {key!r} is given twice (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def read_instances(path: Path, registered: Mapping[str, ConnectorEntry]) -> dict[str, SystemEntry]:
    """The instances declared in ``path``; ``InstancesError`` naming the entry and field."""
    where = str(path)
    try:
        with path.open("rb") as handle:
            raw_bytes = handle.read(MAX_INSTANCES_BYTES + 1)
    except OSError as exc:
        raise InstancesError(f"instances file {where}: cannot be read ({type(exc).__name__})") from exc
    if len(raw_bytes) > MAX_INSTANCES_BYTES:
        raise InstancesError(f"instances file {where}: larger than {MAX_INSTANCES_BYTES} bytes")
    try:
        raw = yaml.load(raw_bytes.decode("utf-8"), Loader=_UniqueKeys)  # noqa: S506 (safe loader)
    except InstancesError as exc:
        raise InstancesError(f"instances file {where}: {exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InstancesError(f"instances file {where}: not valid YAML ({type(exc).__name__})") from exc
    try:
        spec = InstancesFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        loc = [str(p) for p in first["loc"]]
        if len(loc) >= 2 and loc[0] == "instances":
            what = f"instance {loc[1]!r}" + (f" field {'.'.join(loc[2:])!r}" if loc[2:] else "")
        else:
            what = f"field {'.'.join(loc) or 'instances'!r}"
        raise InstancesError(f"instances file {where}: {what}: {first['msg']}") from exc
    entries: dict[str, SystemEntry] = {}
    for instance_id, item in spec.instances.items():
        if not _SYSTEM_ID.fullmatch(instance_id) or len(instance_id) > 48:
            raise InstancesError(f"instances file {where}: instance {instance_id!r}: the id must "
                                 "be <domain>_<name> (lower case, digits, _; at most 48 characters)")
        if ":" in item.connector:
            connector = ConnectorEntry(instance_id, item.connector)
        elif item.connector in registered:
            connector = registered[item.connector]
        else:
            raise InstancesError(
                f"instances file {where}: instance {instance_id!r} field 'connector': "
                f"{item.connector!r} is not a registered connector; registered: "
                f"{sorted(registered)}")
        entries[instance_id] = SystemEntry(
            system_id=instance_id, domain=connector.domain, connector=connector.connector,
            operations=item.operations or connector.operations,
            team=item.team or connector.domain,
            connector_id=connector.connector_id, conn_id=item.conn_id or instance_id,
            dispatch=item.dispatch, status_sync=item.status_sync, reconcile=item.reconcile,
            description=item.description)
    return entries


# -- registered connectors (entry points) ----------------------------------------------------

def _pyproject_entry_points() -> dict[str, str]:
    """This source tree's own registrations (so a venv installed before a connector was added
    still finds it); empty when the package is installed without its source tree."""
    try:
        import tomllib

        with _PYPROJECT.open("rb") as handle:
            project = tomllib.load(handle).get("project", {})
    except (OSError, ValueError):
        return {}
    return dict(project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}))


def registered_connectors() -> dict[str, ConnectorEntry]:
    """Every connector registered under ``council_hub.connectors``, by system id (no import)."""
    found: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    for name, value in _pyproject_entry_points().items():
        found[name] = value
    bad = sorted(n for n in found if not _SYSTEM_ID.fullmatch(n))
    if bad:
        raise InstancesError(f"entry points {ENTRY_POINT_GROUP}: names must be <domain>_<system>: {bad}")
    return {name: ConnectorEntry(name, value.strip()) for name, value in sorted(found.items())}


# -- the catalogue --------------------------------------------------------------------------

class _Catalogue(MutableMapping[str, SystemEntry]):
    """Instance id -> ``SystemEntry``, read on first use (``reload()`` reads again); tests may
    add or remove an entry in place."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, SystemEntry] | None = None

    def _loaded(self) -> dict[str, SystemEntry]:
        entries = self._entries
        if entries is None:
            with self._lock:
                if self._entries is None:
                    self._entries = read_instances(instances_path(), registered_connectors())
                entries = self._entries
        return entries

    def reload(self) -> None:
        with self._lock:
            self._entries = None

    def __getitem__(self, key: str) -> SystemEntry:
        return self._loaded()[key]

    def __setitem__(self, key: str, value: SystemEntry) -> None:
        self._loaded()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __repr__(self) -> str:
        return f"<catalogue {sorted(self._loaded())}>"


SYSTEMS = _Catalogue()
"""Every instance, by instance id (``SYSTEMS[...]``, ``in``, iteration)."""


def reload() -> None:
    """Read the instances file (and the entry points) again on next use (tests, ``HUB_INSTANCES``)."""
    SYSTEMS.reload()
    _load.cache_clear()


@lru_cache(maxsize=None)
def _load(path: str) -> object:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def entry(system_id: str) -> SystemEntry:
    try:
        return SYSTEMS[system_id]
    except KeyError:
        raise KeyError(f"unknown back-office system {system_id!r}; known: {sorted(SYSTEMS)}") from None


def operations(system_id: str) -> Mapping[str, type["BaseModel"]]:
    return _load(entry(system_id).operations)  # type: ignore[return-value]


def connector_class(system_id: str) -> type["Connector"]:
    """The connector class bound to the instance ``system_id`` (its ``system_id()`` is the
    instance id, its ``default_conn_id`` the instance's connection); the class itself for an
    instance named after its connector with the default connection."""
    found = entry(system_id)
    cls: type[Connector] = _load(found.connector)  # type: ignore[assignment]
    return cls.for_instance(system_id, found.conn_id)
