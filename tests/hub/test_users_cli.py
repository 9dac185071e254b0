"""`hub users add|disable|enable|reset-password|list` against a real ledger."""
from __future__ import annotations

import re

import pytest

from hub import accounts
from hub.cli import main
from hub.ledger import db


@pytest.fixture
def ledger(sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HUB_DATABASE_URL", sqlite_ledger)
    return sqlite_ledger


def test_add_prints_a_one_time_password_that_signs_in(ledger: str, capsys) -> None:
    assert main(["users", "add", "jo.bloggs", "--team", "revenues", "--team", "waste",
                 "--name", "Jo Bloggs"]) == 0
    out = capsys.readouterr().out
    password = re.search(r"one-time password: (\S+)", out).group(1)
    with db.session_scope(ledger) as session:
        user = accounts.authenticate(session, "jo.bloggs", password, client="t")
    assert user is not None and user.teams == {"revenues", "waste"} and user.must_change_password


def test_operations_accounts_join_the_operations_team_and_bad_input_is_named(ledger: str, capsys) -> None:
    assert main(["users", "add", "ops.one", "--role", "operations"]) == 0
    assert main(["users", "add", "nobody.x"]) == 2, "a team member needs a team"
    assert main(["users", "add", "x.y", "--team", "parking"]) == 2
    assert main(["users", "add", "ops.one", "--role", "admin"]) == 2, "names are unique"
    err = capsys.readouterr().err
    assert "needs at least one team" in err and "unknown team" in err and "already exists" in err
    with db.session_scope(ledger) as session:
        assert accounts.find(session, "ops.one").teams == "operations"


def test_disable_and_reset_password(ledger: str, capsys) -> None:
    main(["users", "add", "jo.bloggs", "--team", "revenues"])
    first = re.search(r"one-time password: (\S+)", capsys.readouterr().out).group(1)
    assert main(["users", "reset-password", "jo.bloggs"]) == 0
    second = re.search(r"one-time password for jo.bloggs: (\S+)", capsys.readouterr().out).group(1)
    with db.session_scope(ledger) as session:
        assert accounts.authenticate(session, "jo.bloggs", first, client="t") is None
        assert accounts.authenticate(session, "jo.bloggs", second, client="t") is not None
    assert main(["users", "disable", "jo.bloggs"]) == 0
    with db.session_scope(ledger) as session:
        assert accounts.authenticate(session, "jo.bloggs", second, client="t") is None
    assert main(["users", "enable", "jo.bloggs"]) == 0
    assert main(["users", "list"]) == 0
    assert "jo.bloggs" in capsys.readouterr().out
    assert main(["users", "disable", "ghost"]) == 2
