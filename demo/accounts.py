"""Demo staff accounts for the hub's pages: one per role, passwords kept in <demo folder>/accounts.json

Created once per demo folder (mode 0600 file, never committed); a later run reuses them. Demo
accounts may sign in with these passwords straight away (real accounts start with a one-time
password, see `hub users`).
"""
from __future__ import annotations

import json
from pathlib import Path

DEMO_ACCOUNTS = [
    {"username": "rev.officer", "role": "member", "teams": ["revenues"],
     "display_name": "Riley Evans (Revenues)"},
    {"username": "waste.officer", "role": "member", "teams": ["waste"],
     "display_name": "Wyn Ashworth (Waste)"},
    {"username": "ops.analyst", "role": "operations", "teams": [],
     "display_name": "Olu Price (Operations)"},
    {"username": "hub.admin", "role": "admin", "teams": [],
     "display_name": "Ash Mitchell (Administrator)"},
]


def ensure(home: Path) -> Path:
    """The demo accounts exist in the ledger (HUB_DATABASE_URL) and in ``home``/accounts.json."""
    from hub import accounts
    from hub.ledger.db import session_scope

    path = home / "accounts.json"
    known: dict[str, dict] = json.loads(path.read_text()) if path.exists() else {}
    with session_scope() as session:
        for spec in DEMO_ACCOUNTS:
            name = spec["username"]
            try:
                account = accounts.find(session, name)
                if name not in known:   # the file was lost: issue a new password
                    password = accounts.reset_password(session, name, actor="demo")
                    known[name] = {**spec, "password": password}
            except accounts.AccountError:
                account, password = accounts.add_account(
                    session, username=name, role=spec["role"], teams=spec["teams"],
                    display_name=spec["display_name"], actor="demo")
                known[name] = {**spec, "password": password}
            account = accounts.find(session, name)
            account.must_change_password = False
            account.disabled = False
    path.write_text(json.dumps(known, indent=2))
    path.chmod(0o600)
    return path


def describe(path: Path, base_url: str) -> list[str]:
    """Lines telling a person where to sign in and with which account."""
    rows = json.loads(path.read_text())
    lines = [f"hub pages: {base_url}/login (passwords in {path})"]
    for name, spec in rows.items():
        teams = f" ({', '.join(spec['teams'])})" if spec.get("teams") else ""
        lines.append(f"  {name:<14} {spec['role']}{teams}")
    return lines
