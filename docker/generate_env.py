#!/usr/bin/env python3
"""Write a .env for docker/compose.yaml from .env.example, with fresh random secrets.

    python3 docker/generate_env.py --output .env                # then add the real Connections
    python3 docker/generate_env.py --simulators --output .env   # Connections point at the simulators

Every empty secret in .env.example (a name ending in _PASSWORD, _SECRET, _TOKEN, _KEY) gets a new
random value: 48 hex digits (safe inside URLs), or a Fernet key for AIRFLOW_FERNET_KEY. Other lines
are copied as they are. With --simulators the simulators' secrets are filled in too, the
AIRFLOW_CONN_* lines point at the simulator services with those secrets, and new DAGs start
unpaused. Standard library only: runs with any Python 3 on the host. The file is written with mode
0600 and never over an existing one.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
SECRET_NAME = re.compile(r"(_PASSWORD|_SECRET|_TOKEN|_KEY)$")
SIMULATOR_SECRETS = {"CRM_SIM_TOKEN", "REVENUES_SIM_PASSWORD", "WASTE_SIM_PASSWORD",
                     "BENEFITS_SIM_PASSWORD", "LICENSING_DB_PASSWORD", "HOUSING_SIM_CLIENT_SECRET"}
LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def is_secret(name: str) -> bool:
    """Whether .env.example must leave ``name`` empty (a password, key, token or Connection)."""
    return bool(SECRET_NAME.search(name)) or name.startswith("AIRFLOW_CONN_")


def new_secret(name: str) -> str:
    if name == "AIRFLOW_FERNET_KEY":
        return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")
    return secrets.token_hex(24)


def simulator_connections(values: dict[str, str]) -> dict[str, dict[str, object]]:
    """The Connections of the `simulators` profile (service names and ports of docker/compose.yaml)."""
    return {
        "AIRFLOW_CONN_CRM": {"conn_type": "http", "host": "http://crm-sim:8100",
                             "password": values["CRM_SIM_TOKEN"],
                             "extra": {"timeout_seconds": 10}},
        "AIRFLOW_CONN_REVENUES_NORTHGATE": {
            "conn_type": "http", "host": "http://revenues-sim:8101/soap", "login": "hub",
            "password": values["REVENUES_SIM_PASSWORD"], "extra": {"timeout_seconds": 20}},
        "AIRFLOW_CONN_WASTE_BARTEC": {
            "conn_type": "http", "host": "http://waste-sim:8104/soap", "login": "hub",
            "password": values["WASTE_SIM_PASSWORD"], "extra": {"timeout_seconds": 20}},
        "AIRFLOW_CONN_HOUSING_REPAIRS": {
            "conn_type": "http", "host": "http://housing-sim:8105", "login": "hub",
            "password": values["HOUSING_SIM_CLIENT_SECRET"], "extra": {"timeout_seconds": 20}},
        "AIRFLOW_CONN_BENEFITS_ACADEMY": {
            "conn_type": "sftp", "host": "benefits-sim", "port": 2222, "login": "academy",
            "password": values["BENEFITS_SIM_PASSWORD"],
            "extra": {"known_hosts_path": "/opt/hub/ssh/benefits_known_hosts",
                      "timeout_seconds": 20}},
        "AIRFLOW_CONN_LICENSING_UNIFORM": {
            "conn_type": "postgres", "host": "postgres", "port": 5432, "login": "licensing",
            "password": values["LICENSING_DB_PASSWORD"], "schema": "licensing",
            "extra": {"timeout_seconds": 20}},
    }


def render(example: str, *, simulators: bool) -> str:
    """The .env text: ``example`` with its empty secrets filled in."""
    values: dict[str, str] = {}
    for line in example.splitlines():
        match = LINE.match(line)
        if match and is_secret(match[1]) and not match[2] and not match[1].startswith("AIRFLOW_CONN_"):
            if simulators or match[1] not in SIMULATOR_SECRETS:
                values[match[1]] = new_secret(match[1])
    overrides = {"AIRFLOW_DAGS_PAUSED_AT_CREATION": "false"} if simulators else {}
    if simulators:
        overrides |= {name: "'" + json.dumps(conn, separators=(",", ":")) + "'"
                      for name, conn in simulator_connections(values).items()}
    out = []
    for line in example.splitlines():
        match = LINE.match(line)
        if match and match[1] in overrides:
            line = f"{match[1]}={overrides[match[1]]}"
        elif match and match[1] in values:
            line = f"{match[1]}={values[match[1]]}"
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulators", action="store_true",
                        help="fill the simulators' secrets and point the Connections at them")
    parser.add_argument("--output", type=Path, help="file to write (default: standard output)")
    parser.add_argument("--example", type=Path, default=EXAMPLE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    text = render(args.example.read_text(encoding="utf-8"), simulators=args.simulators)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"{args.output} exists; not overwriting it", file=sys.stderr)
        return 1
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"wrote {args.output} (mode 0600)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
