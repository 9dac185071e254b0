"""Drift on purpose: one disagreement of each back-office/CRM-side class, seeded in the running
simulators after the demo's main run, for reconciliation to find (issue 7).

``seed_drift(home, crm, systems)`` picks confirmed commands from the hub's ledger (never the same
record twice) and, through each simulator's own admin interface, makes:

==========================  ==================================================================
class                       what is done
==========================  ==================================================================
``missing_in_backoffice``   a confirmed record is deleted in its back office
``unknown_in_backoffice``   a record carrying a hub-style key the ledger does not know is
                            added (a copy of a confirmed record)
``field_mismatch``          one field the hub sent is changed in the back office (Licensing
                            the applicant's name, Housing the room, Revenues the move or
                            effective date or payment day, Waste the UPRN, Benefits a text
                            field of the change); the entry names the payload field
``status_not_in_crm``       a record's back-office status is changed silently (no change feed
                            entry, so status sync never tells the CRM)
``writeback_missing``       the CRM loses the write-back of a confirmed case
                            (``POST /admin/cases/{crm_id}/lose-writeback``)
==========================  ==================================================================

Each class is tried on the connectors in its ``PREFERENCE`` order (every instance of each) and
seeded on the first one that has a usable confirmed record. What was seeded is kept in ``<home>/drift.json`` as it is done:
a later call seeds nothing for a class already there (``make demo`` twice seeds once), and
returns only what it seeded now. ``seeded(home)`` reads the marker. Nothing personal is logged or
kept: system ids, references, keys and CRM case ids only.

The simulators' admin interfaces used: ``/admin/drift/records...`` (``simulators.kit``'s
``drift_router``) on Revenues, Waste and Housing; ``drift_change`` / ``drift_delete`` /
``drift_add`` on the Benefits and Licensing back offices (their admin interface is Python, as
for staff changes, see ``demo.systems``).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from demo.systems import CrmDemo, DemoSystem

CLASSES = ("missing_in_backoffice", "unknown_in_backoffice", "field_mismatch",
           "status_not_in_crm", "writeback_missing")
MARKER = "drift.json"

#: Systems to try per class, in order (the first with a usable confirmed record is used).
PREFERENCE: dict[str, tuple[str, ...]] = {
    "missing_in_backoffice": ("housing_repairs", "waste_bartec", "licensing_uniform",
                              "revenues_northgate", "benefits_academy"),
    "unknown_in_backoffice": ("waste_bartec", "housing_repairs", "revenues_northgate",
                              "licensing_uniform", "benefits_academy"),
    "field_mismatch": ("licensing_uniform", "housing_repairs", "revenues_northgate",
                       "waste_bartec", "benefits_academy"),
    "status_not_in_crm": ("revenues_northgate", "waste_bartec", "licensing_uniform",
                          "housing_repairs", "benefits_academy"),
}
#: A back-office status whose CRM status (``open``) differs from a confirmed, closed record's.
DRIFT_STATUS = {"revenues_northgate": "REOPENED", "waste_bartec": "IN PROGRESS",
                "licensing_uniform": "FURTHER_INFO", "housing_repairs": "ON_HOLD",
                "benefits_academy": "UNDER_REVIEW"}


def seeded(home: Path) -> dict[str, dict[str, Any]]:
    """What earlier calls seeded, by class (empty before the first)."""
    path = home / MARKER
    return json.loads(path.read_text())["seeded"] if path.exists() else {}


def seed_drift(home: Path, crm: CrmDemo, systems: list[DemoSystem], *,
               url: str | None = None) -> dict[str, dict[str, Any]]:
    """Seed each class not seeded before; returns ``{class: {"system", "reference", "key",
    "crm_id", ...}}`` for what was seeded now (``{}`` on a rerun). Reads the ledger at ``url``
    (default ``HUB_DATABASE_URL``, the demo's); the simulators must be running. A class that
    finds no usable record is left out (and tried again on the next call)."""
    done = seeded(home)
    made: dict[str, dict[str, Any]] = {}
    used = {(entry.get("system"), entry.get("reference")) for entry in done.values()}
    # one class per CRM case too: the engine reports one finding per case for the CRM side
    used |= {("case", entry.get("crm_id")) for entry in done.values()}
    for name in CLASSES:
        if name in done:
            continue
        entry = (_writeback_missing(crm, used, url) if name == "writeback_missing"
                 else _backoffice_drift(name, systems, used, url))
        if entry is None:
            continue
        used |= {(entry.get("system"), entry.get("reference")), ("case", entry.get("crm_id"))}
        done[name] = made[name] = entry
        (home / MARKER).write_text(json.dumps({"seeded": done}, indent=2, sort_keys=True))
    return made


# -- choosing records ------------------------------------------------------------------------------
def _confirmed(system_id: str, url: str | None, limit: int = 50) -> list[dict[str, Any]]:
    """Confirmed commands of a system, oldest first: key, reference, operation, payload, crm_id."""
    from sqlalchemy import select

    from hub.ledger.db import session_scope
    from hub.ledger.models import Case, Command, CommandState

    with session_scope(url) as session:
        rows = session.execute(
            select(Command.key, Command.reference, Command.operation, Command.payload, Case.crm_id)
            .join(Case).where(Command.system == system_id,
                              Command.state == CommandState.CONFIRMED.value,
                              Command.reference.is_not(None))
            .order_by(Command.id).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


def _delivered_cases(url: str | None, limit: int = 50) -> list[str]:
    """CRM cases with a confirmed command whose write-back the outbox says was sent."""
    from sqlalchemy import select

    from hub.ledger.db import session_scope
    from hub.ledger.models import Command, CommandState, OutboxMessage, OutboxState

    with session_scope(url) as session:
        return list(session.scalars(
            select(OutboxMessage.crm_id).join(Command, Command.id == OutboxMessage.command_id)
            .where(OutboxMessage.state == OutboxState.SENT.value,
                   Command.state == CommandState.CONFIRMED.value)
            .group_by(OutboxMessage.crm_id).order_by(OutboxMessage.crm_id).limit(limit)))


def connector_id(system: DemoSystem) -> str:
    """The connector a demo system simulates (``waste_bartec``), whatever instance it is bound
    to (``demo.systems.demo_systems`` subclasses it with the instance id)."""
    for cls in type(system).__mro__:
        if cls.__dict__.get("system_id") in MAKERS:
            return str(cls.__dict__["system_id"])
    return system.system_id


def _backoffice_drift(name: str, systems: list[DemoSystem], used: set[tuple[Any, Any]],
                      url: str | None) -> dict[str, Any] | None:
    for wanted in PREFERENCE[name]:
        for system in systems:
            if connector_id(system) != wanted:
                continue
            entry = _drift_one(name, system, MAKERS[wanted], used, url)
            if entry is not None:
                return entry
    return None


def _drift_one(name: str, system: DemoSystem, maker: _Maker, used: set[tuple[Any, Any]],
               url: str | None) -> dict[str, Any] | None:
    system_id = system.system_id
    for command in _confirmed(system_id, url):
        if (system_id, command["reference"]) in used or ("case", command["crm_id"]) in used:
            continue
        entry = {"system": system_id, "reference": command["reference"],
                 "key": command["key"], "crm_id": command["crm_id"]}
        if name == "missing_in_backoffice":
            maker.delete(system, command)
        elif name == "unknown_in_backoffice":
            entry["key"] = unknown_key(command["crm_id"])
            entry["reference"] = maker.add(system, command, entry["key"])
            entry["like"] = command["reference"]
        elif name == "field_mismatch":
            entry["field"] = maker.change_field(system, command)
        else:
            entry["status"] = DRIFT_STATUS[connector_id(system)]
            maker.change_status(system, command, entry["status"])
        return entry
    return None


def _writeback_missing(crm: CrmDemo, used: set[tuple[Any, Any]],
                       url: str | None) -> dict[str, Any] | None:
    for crm_id in _delivered_cases(url):
        if ("case", crm_id) in used:
            continue
        answer = httpx.post(f"{crm.base_url}/admin/cases/{crm_id}/lose-writeback", timeout=10)
        answer.raise_for_status()
        if answer.json().get("lost", 0) > 0:
            return {"system": "crm", "reference": crm_id, "crm_id": crm_id,
                    "lost": answer.json()["lost"]}
    return None


def unknown_key(crm_id: str) -> str:
    """A key shaped like the hub's (``<case>.<step>.<10 hex>``, ``[A-Za-z0-9._-]``, at most 64)
    that no mapping makes: the ``drift`` step."""
    digest = hashlib.sha256(f"drift:{crm_id}".encode()).hexdigest()[:10]
    case = "".join(c if c.isalnum() or c in "._-" else "-" for c in crm_id)[:40]
    return f"{case}.drift.{digest}"


# -- per system: how its simulator is told ----------------------------------------------------------
class _Maker:
    """How one simulator deletes, adds and changes a record behind the hub's back."""

    def delete(self, system: Any, command: dict[str, Any]) -> None:
        raise NotImplementedError

    def add(self, system: Any, command: dict[str, Any], key: str) -> str:
        raise NotImplementedError

    def change_field(self, system: Any, command: dict[str, Any]) -> str:
        raise NotImplementedError

    def change_status(self, system: Any, command: dict[str, Any], status: str) -> None:
        raise NotImplementedError


class _HttpMaker(_Maker):
    """Simulators with ``simulators.kit.drift_router`` (Revenues, Waste, Housing)."""

    def __init__(self, field: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]) -> None:
        self.field = field

    @staticmethod
    def _call(system: Any, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = httpx.request(method, f"{system.base_url}/admin/drift/records{path}",
                               timeout=10, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def delete(self, system: Any, command: dict[str, Any]) -> None:
        self._call(system, "DELETE", f"/{command['reference']}")

    def add(self, system: Any, command: dict[str, Any], key: str) -> str:
        return str(self._call(system, "POST", "", json={"key": key, "like": command["reference"]})
                   ["reference"])

    def change_field(self, system: Any, command: dict[str, Any]) -> str:
        field, values = self.field(command)
        self._call(system, "POST", f"/{command['reference']}", json={"fields": values})
        return field

    def change_status(self, system: Any, command: dict[str, Any], status: str) -> None:
        self._call(system, "POST", f"/{command['reference']}", json={"status": status})


def _revenues_field(command: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    payload = command["payload"] or {}
    if command["operation"] == "ctax.change_of_address":
        return "moved_on", {"MovedOn": "2001-01-01"}
    if command["operation"] == "ctax.direct_debit":
        return "payment_day", {"PaymentDay": 8 if payload.get("payment_day") != 8 else 22}
    return "effective_from", {"EffectiveFrom": "2001-01-01"}


def _waste_field(command: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from simulators.waste import sample

    current = str((command["payload"] or {}).get("uprn"))
    other = next(p["uprn"] for p in sample.premises() if p["uprn"] != current)
    return "uprn", {"UPRN": other}


class _LicensingMaker(_Maker):
    def delete(self, system: Any, command: dict[str, Any]) -> None:
        with system._backoffice() as office:
            office.drift_delete(command["reference"])

    def add(self, system: Any, command: dict[str, Any], key: str) -> str:
        with system._backoffice() as office:
            return office.drift_add(key, like=command["reference"])

    def change_field(self, system: Any, command: dict[str, Any]) -> str:
        with system._backoffice() as office:
            office.drift_change(command["reference"], fields={"APPLICANT_NAME": "Changed By Data Fix"})
        return "applicant.name"

    def change_status(self, system: Any, command: dict[str, Any], status: str) -> None:
        with system._backoffice() as office:
            office.drift_change(command["reference"], status=status)


class _BenefitsMaker(_Maker):
    """The back office's records are keyed by record id (the command key); the extract is
    published at once so the change shows without waiting for the next batch run."""

    def _office(self, system: Any) -> Any:
        return system._backoffice()

    def delete(self, system: Any, command: dict[str, Any]) -> None:
        office = self._office(system)
        office.drift_delete(command["key"])
        office.publish_extract()

    def add(self, system: Any, command: dict[str, Any], key: str) -> str:
        office = self._office(system)
        office.drift_add(key, like=command["key"])
        office.publish_extract()
        return str(command["reference"])   # the claim the copied change is on

    def change_field(self, system: Any, command: dict[str, Any]) -> str:
        payload = {k: v for k, v in (command["payload"] or {}).items()
                   if k != "claim_ref" and isinstance(v, str)}
        field = sorted(payload)[0]
        office = self._office(system)
        office.drift_change(command["key"], fields={field: f"{payload[field]}-changed"})
        office.publish_extract()
        return field

    def change_status(self, system: Any, command: dict[str, Any], status: str) -> None:
        office = self._office(system)
        office.drift_change(command["key"], status=status)
        office.publish_extract()


MAKERS: dict[str, _Maker] = {
    "revenues_northgate": _HttpMaker(_revenues_field),
    "waste_bartec": _HttpMaker(_waste_field),
    "housing_repairs": _HttpMaker(lambda command: ("room", {"room": "drift-changed-room"})),
    "licensing_uniform": _LicensingMaker(),
    "benefits_academy": _BenefitsMaker(),
}


# -- by hand, on a running stack ---------------------------------------------------------------------
def systems_of_stack(home: Path) -> list[DemoSystem]:
    """The demo systems of the stack running from ``home`` (``make up``: var/up), bound to the
    ports its ``stack.json`` names."""
    from urllib.parse import urlsplit

    from demo.systems import demo_systems

    status_path = home / "stack.json"
    if not status_path.exists():
        raise SystemExit(f"[demo] {status_path} not found: start the stack first (make up)")
    urls = json.loads(status_path.read_text()).get("simulator_urls") or {}
    systems: list[DemoSystem] = []
    for cls in demo_systems():
        if cls.system_id not in urls:
            continue
        system = cls(home, {})
        if urls[cls.system_id]:
            system.port = int(urlsplit(urls[cls.system_id]).port or 0)
        systems.append(system)
    return systems


def drift_by_hand(home: Path, name: str, system_id: str) -> dict[str, Any]:
    """Make one drift of class ``name`` in ``system_id``'s running simulator, on a confirmed
    record not drifted by hand before (kept in ``<home>/drift-by-hand.json``); returns what was
    done. Reads the stack's ledger from ``<home>/hub.env``."""
    from hub import envfile

    url = envfile.read(home / "hub.env")["HUB_DATABASE_URL"]
    systems = [s for s in systems_of_stack(home) if s.system_id == system_id]
    if not systems:
        raise SystemExit(f"[demo] {system_id} is not running in {home}")
    marker = home / "drift-by-hand.json"
    done: list[dict[str, Any]] = json.loads(marker.read_text()) if marker.exists() else []
    used = {(e["system"], e.get("reference")) for e in done} \
        | {(e["system"], e.get("like")) for e in done} \
        | {("case", e.get("crm_id")) for e in done}
    entry = _drift_one(name, systems[0], MAKERS[connector_id(systems[0])], used, url)
    if entry is None:
        raise SystemExit(f"[demo] {system_id} has no confirmed record left to change (let the "
                         "stack deliver the sample cases first)")
    entry["class"] = name
    marker.write_text(json.dumps([*done, entry], indent=2, sort_keys=True))
    return entry


def main(argv: list[str] | None = None) -> int:
    import argparse

    from demo.driver import default_home

    parser = argparse.ArgumentParser(
        prog="python -m demo.drift",
        description="Change a record directly in a running simulator, behind the hub's back "
                    "(the next `hub reconcile` finds it).")
    parser.add_argument("drift", choices=[c for c in CLASSES if c != "writeback_missing"])
    parser.add_argument("system", help="an instance id, e.g. housing_repairs")
    parser.add_argument("--home", type=Path, default=None,
                        help="the running stack's folder (default var/up, as `make up`)")
    args = parser.parse_args(argv)
    home = (args.home or default_home("up")).resolve()
    entry = drift_by_hand(home, args.drift, args.system)
    print(json.dumps(entry, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
