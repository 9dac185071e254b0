"""``hub systems`` and ``/api/systems``: every registered instance, zero counts where nothing has
happened yet, and the last connection check kept in the ledger."""
from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from connectors import catalog
from connectors.errors import PermanentError, TransientError
from hub import cli, systems
from tests.hub.factories import receive_and_map
from tests.hub.scripted import ScriptedConnector


class _Checked(ScriptedConnector):
    def __init__(self, error: Exception | None) -> None:
        super().__init__()
        self.error = error
        self.closed = False

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


def _factory(errors: dict[str, Exception | None]):  # type: ignore[no-untyped-def]
    made: list[_Checked] = []

    def build(system_id: str) -> _Checked:
        made.append(_Checked(errors.get(system_id)))
        return made[-1]
    return build, made


def test_every_instance_is_listed_with_zero_counts_and_no_check_yet(ledger_url: str) -> None:
    receive_and_map(ledger_url, 2)
    listed = systems.overview(ledger_url)
    assert set(catalog.SYSTEMS) <= set(listed)
    idle = listed["housing_repairs"]
    assert idle["registered"] and idle["team"] == "housing" and idle["conn_id"] == "housing_repairs"
    assert idle["pending"] == idle["confirmed"] == idle["received"] == 0
    assert idle["last_check"] is None
    assert listed["revenues_northgate"]["pending"] == 2, "figures from the ledger where there are any"


def test_checks_are_kept_per_instance_and_replaced_by_the_next(ledger_url: str) -> None:
    build, made = _factory({"waste_bartec": TransientError("waste_bartec: Authenticate timed out",
                                                           code="timeout"),
                            "licensing_uniform": PermanentError("licensing_uniform: login refused")})
    results = systems.check_all(["revenues_northgate", "waste_bartec", "licensing_uniform"],
                                factory=build, url=ledger_url)
    assert [(r.system, r.ok, r.error_class) for r in results] == [
        ("revenues_northgate", True, None), ("waste_bartec", False, "TransientError"),
        ("licensing_uniform", False, "PermanentError")]
    assert all(c.closed for c in made), "every connector built for a check is closed"
    listed = systems.overview(ledger_url)
    waste = listed["waste_bartec"]["last_check"]
    assert (waste["ok"], waste["code"], waste["error_class"]) == (False, "timeout", "TransientError")
    assert "timed out" in waste["message"] and waste["checked_at"]
    assert listed["revenues_northgate"]["last_check"]["ok"] is True
    assert listed["housing_repairs"]["last_check"] is None

    build, _ = _factory({})
    systems.check("waste_bartec", factory=build, url=ledger_url)
    assert systems.overview(ledger_url)["waste_bartec"]["last_check"]["ok"] is True
    with pytest.raises(KeyError):
        systems.check("no_such_system", factory=build, url=ledger_url)


def test_a_long_message_is_cut_to_its_column(ledger_url: str) -> None:
    build, _ = _factory({"revenues_northgate": PermanentError("x" * 2000, code="c" * 200)})
    [result] = systems.check_all(["revenues_northgate"], factory=build, url=ledger_url)
    stored = systems.last_checks(ledger_url)["revenues_northgate"]
    assert len(stored.message) == systems.MESSAGE_LENGTH and len(stored.code) == 80
    assert not result.ok


def test_the_cli_lists_every_instance_and_fails_when_a_check_fails(
        sqlite_ledger: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", sqlite_ledger)
    build, _ = _factory({"waste_bartec": TransientError("waste_bartec: unreachable")})

    def check_all(names: Sequence[str] | None = None, **_: object) -> list[systems.CheckResult]:
        return [systems.check(s, factory=build, url=sqlite_ledger)
                for s in (names or list(catalog.SYSTEMS))]

    monkeypatch.setattr(systems, "check_all", check_all)
    assert cli.main(["systems"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert set(listed) == set(catalog.SYSTEMS)
    assert cli.main(["systems", "--check", "revenues_northgate"]) == 0
    captured = capsys.readouterr()
    assert "revenues_northgate: ok" in captured.err
    assert json.loads(captured.out)["revenues_northgate"]["last_check"]["ok"] is True
    assert cli.main(["systems", "--check"]) == 1
    assert "waste_bartec: failed TransientError" in capsys.readouterr().err


def test_the_housekeeping_dag_checks_every_instance_and_keeps_the_results(
        ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daily check runs ``hub systems --check``'s logic for every registered instance: one
    failing instance is a stored result, the others are still checked, the run succeeds."""
    from hub.orchestration import housekeeping_dag

    build, made = _factory({"waste_bartec": TransientError("waste_bartec: unreachable",
                                                           code="connect")})
    real_check_all = systems.check_all
    monkeypatch.setattr(systems, "check_all", lambda systems_=None, **_: real_check_all(
        systems_, factory=build, url=ledger_url))
    task = housekeeping_dag().get_task("check_connections")
    summary = task.python_callable()  # type: ignore[attr-defined]
    assert summary == {"checked": len(catalog.SYSTEMS), "failed": ["waste_bartec"]}
    assert len(made) == len(catalog.SYSTEMS) and all(c.closed for c in made)
    listed = systems.overview(ledger_url)
    assert {s for s in catalog.SYSTEMS if listed[s]["last_check"] is not None} == set(catalog.SYSTEMS)
    assert listed["waste_bartec"]["last_check"]["code"] == "connect"
    assert listed["housing_repairs"]["last_check"]["ok"] is True
