"""`hub reconcile [--system S] [--dry-run]`: one line per system; dry run heals nothing."""
from __future__ import annotations

import contextlib

import pytest

from hub import cli, connections
from hub.ledger.models import Command, ReconcileRun, WorkItem
from tests.hub import factories
from tests.hub.reconcile.test_engine import SYSTEM, _drift, _world


def _connect(monkeypatch: pytest.MonkeyPatch, ledger: str, office: object, crm: object) -> None:
    """What the CLI reaches through ``hub.connections``: this ledger, this office and this CRM."""
    monkeypatch.setenv("HUB_DATABASE_URL", ledger)
    monkeypatch.setattr(connections, "connector_for", lambda system: office)
    monkeypatch.setattr(connections, "crm_client", lambda: contextlib.nullcontext(crm))


def test_cli_dry_run_then_real_run(sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    office, crm, commands = _world(sqlite_ledger)
    _drift(sqlite_ledger, office, crm, commands)
    _connect(monkeypatch, sqlite_ledger, office, crm)

    assert cli.main(["reconcile", "--system", SYSTEM, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{SYSTEM}: run 1 finished (dry run)" in out and "(7 new); healed 0" in out
    assert not factories.rows(sqlite_ledger, WorkItem)
    assert cli.main(["reconcile", "--system", SYSTEM]) == 0
    out = capsys.readouterr().out
    assert "healed 4; work items opened 3" in out
    assert [r.dry_run for r in factories.rows(sqlite_ledger, ReconcileRun)] == [True, False]
    assert any(c.state == "pending" for c in factories.rows(sqlite_ledger, Command))


def test_cli_refuses_an_unknown_system(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["reconcile", "--system", "nowhere"]) == 2
    assert "unknown system" in capsys.readouterr().err


@pytest.mark.parametrize("fails", [False, True])
def test_every_run_closes_its_connector(sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], fails: bool) -> None:
    """What the DAG task and the CLI run (``reconcile_configured``) closes the connector it built,
    when the run finishes and when the back office fails it (Benefits holds an SSH session)."""
    from connectors.errors import TransientError

    office, crm, commands = _world(sqlite_ledger)
    closed: list[bool] = []
    monkeypatch.setattr(office, "close", lambda: closed.append(True))
    if fails:
        def broken(*args: object, **kwargs: object) -> None:
            raise TransientError("back office down", code="down")
        monkeypatch.setattr(office, "records", broken)
    _connect(monkeypatch, sqlite_ledger, office, crm)

    assert cli.main(["reconcile", "--system", SYSTEM]) == (1 if fails else 0)
    assert closed == [True]
    assert ("run failed" in capsys.readouterr().out) is fails
