"""``hub new-connector <domain> <system> --transport rest|soap|sftp|sql``: a new back-office system
that passes the contract suite as generated, with ``TODO(vendor)`` where the vendor's specifics go.

Writes, under ``root`` (the repository by default):

- ``connectors/<domain>/<system>.py`` and ``connectors/<domain>/operations.py`` (+ ``__init__.py``;
  in a domain that has its own, ``<system>_operations.py``, named in the instance's ``operations:``);
- ``mappings/case_types/<domain>_<system>_request.yaml`` (a mapping stub with an example);
- ``tests/connectors/<domain>/test_<system>_contract.py`` (the harness and the suite);
- a simulator stub (+ ``simulators/<domain>/__init__.py``): ``simulators/<domain>/app.py`` on
  ``simulators/kit.py`` for ``rest`` and ``soap`` (on ``simulators/soap.py``), and
  ``simulators/<domain>/backoffice.py`` for ``sql`` (the schema and the staff's changes) and
  ``sftp`` (the back office's side of the exchange folder: its batch run and staff changes);
- for ``soap``, the WSDL ``connectors/<domain>/wsdl/<system>.wsdl`` (the connector builds its
  requests from it; the simulator stub serves it, read as a file);

and registers the system as an instance in the instances file (``connectors/instances.yaml``,
``connector: connectors.<domain>.<system>:<Class>``: no reinstall needed). A council's own package
registers its connector through the ``council_hub.connectors`` entry point instead.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from hub import scaffold_rest, scaffold_sftp, scaffold_soap, scaffold_sql

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"[a-z][a-z0-9]{1,23}")
TRANSPORTS = ("rest", "soap", "sftp", "sql")


class ScaffoldError(ValueError):
    """The scaffold cannot write this system (bad name, a file already there...)."""


@dataclass(frozen=True)
class Written:
    path: Path
    lines: int
    counted: bool
    """Part of what the system costs (the simulator and package markers are not)."""


def _class_name(system: str) -> str:
    return system[:1].upper() + system[1:]


def new_connector(domain: str, system: str, *, transport: str = "rest", root: Path = REPO,
                  instances: Path | None = None, title: str | None = None) -> list[Written]:
    """Write the files and register the instance; nothing is overwritten."""
    for what, value in (("domain", domain), ("system", system)):
        if not NAME.fullmatch(value):
            raise ScaffoldError(f"{what} {value!r}: lower-case letters and digits, 2-24, "
                                "starting with a letter")
    if transport not in TRANSPORTS:
        raise ScaffoldError(f"transport {transport!r}: one of {', '.join(TRANSPORTS)}")
    system_id = f"{domain}_{system}"
    values = {"domain": domain, "system": system, "system_id": system_id,
              "cls": _class_name(system), "case_type": f"{system_id}_request",
              "title": title or f"{_class_name(system)} ({domain})"}
    kind = {"rest": scaffold_rest, "soap": scaffold_soap, "sftp": scaffold_sftp,
            "sql": scaffold_sql}[transport]
    simulator = "backoffice.py" if transport in ("sql", "sftp") else "app.py"
    # A domain that has its own operations module (or simulator) gets the system's own, by name.
    operations = ("operations" if not (root / f"connectors/{domain}/operations.py").exists()
                  else f"{system}_operations")
    if (root / f"simulators/{domain}/{simulator}").exists():
        simulator = f"{system}_{simulator}"
    values.update(operations_module=operations, simulator_module=simulator.removesuffix(".py"))
    files = {
        f"connectors/{domain}/__init__.py": ("", False),
        f"connectors/{domain}/{operations}.py": (scaffold_rest.OPERATIONS, True),
        f"connectors/{domain}/{system}.py": (kind.CONNECTOR, True),
        f"mappings/case_types/{system_id}_request.yaml": (scaffold_rest.MAPPING, True),
        f"tests/connectors/{domain}/__init__.py": ("", False),
        f"tests/connectors/{domain}/test_{system}_contract.py": (kind.CONTRACT_TEST, True),
        f"simulators/{domain}/__init__.py": (f'"""A {domain} back-office simulator."""\n', False),
        f"simulators/{domain}/{simulator}": (kind.SIMULATOR, False),
    }
    if transport == "soap":   # the vendor's WSDL: the connector and the simulator read it
        files[f"connectors/{domain}/wsdl/{system}.wsdl"] = (scaffold_soap.WSDL, False)
        values.update(scaffold_soap.wsdl_values(system_id))
    markers = {p for p, (text, _) in files.items() if p.endswith("__init__.py")}
    taken = sorted(p for p in files if (root / p).exists() and p not in markers)
    if taken:
        raise ScaffoldError(f"already there, not overwritten: {', '.join(taken)}")
    instances = instances or root / "connectors" / "instances.yaml"
    _check_instance_free(instances, system_id)
    rendered = {rel: (Template(text).substitute(values), counted)
                for rel, (text, counted) in files.items() if not (root / rel).exists()}
    written = []
    for rel, (text, counted) in rendered.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(Written(path, len(text.splitlines()), counted))
    _register(instances, system_id, f"connectors.{domain}.{system}:{values['cls']}Connector",
              values["title"], None if operations == "operations"
              else f"connectors.{domain}.{operations}:OPERATIONS")
    return written


def _check_instance_free(instances: Path, system_id: str) -> None:
    if instances.exists() and re.search(rf"^  {system_id}:", instances.read_text(encoding="utf-8"),
                                        re.MULTILINE):
        raise ScaffoldError(f"{instances}: instance {system_id} is already declared")


def _register(instances: Path, system_id: str, connector: str, title: str,
              operations: str | None = None) -> None:
    """Append the instance to the instances file (created when missing)."""
    text = instances.read_text(encoding="utf-8") if instances.exists() else "instances:\n"
    about = json.dumps(f"{title} (TODO: schedules, team, connection; see the top of the file)")
    entry = f"  {system_id}:\n    connector: {connector}\n    description: {about}\n"
    if operations is not None:   # not the operations module next to the connector
        entry += f"    operations: {operations}\n"
    instances.parent.mkdir(parents=True, exist_ok=True)
    instances.write_text(text.rstrip("\n") + "\n" + entry, encoding="utf-8")
