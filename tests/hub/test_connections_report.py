"""`hub connections`: which Connections are defined and readable, without showing a value."""
from __future__ import annotations

import json

import pytest

from hub import cli
from hub.connections import connection_report

SECRET = "s3cret-not-for-logs"


def test_defined_missing_and_invalid_connections_are_told_apart(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM", json.dumps(
        {"conn_type": "http", "host": "http://crm.example", "password": SECRET}))
    monkeypatch.setenv("AIRFLOW_CONN_REVENUES_NORTHGATE", json.dumps(
        {"conn_type": "http", "host": "http://revenues.example/soap", "login": "hub",
         "password": SECRET}))
    monkeypatch.setenv("AIRFLOW_CONN_WASTE_BARTEC", json.dumps(
        {"conn_type": "http", "host": "ftp://not-http.example", "login": "hub", "password": SECRET,
         "extra": {"timeout_seconds": "soon"}}))
    for name in ("BENEFITS_ACADEMY", "LICENSING_UNIFORM", "HOUSING_REPAIRS"):
        monkeypatch.delenv(f"AIRFLOW_CONN_{name}", raising=False)
    states = {s.conn_id: s for s in connection_report()}
    assert {k: s.state for k, s in states.items()} == {
        "crm": "ok", "revenues_northgate": "ok", "waste_bartec": "invalid",
        "benefits_academy": "missing", "licensing_uniform": "missing",
        "housing_repairs": "missing"}
    assert "timeout_seconds" in states["waste_bartec"].detail

    assert cli.main(["connections", "--require", "crm"]) == 1, "an invalid connection fails"
    out = capsys.readouterr().out
    assert SECRET not in out and "not-http" not in out
    assert "benefits_academy: missing: its DAGs fail" in out

    monkeypatch.delenv("AIRFLOW_CONN_WASTE_BARTEC")
    assert cli.main(["connections"]) == 0, "missing but not required is a warning"
    monkeypatch.delenv("AIRFLOW_CONN_CRM")
    assert cli.main(["connections", "--require", "crm"]) == 1
    assert "crm: missing and required" in capsys.readouterr().out
