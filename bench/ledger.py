"""Deliverable 5: the ledger alone, on SQLite and on PostgreSQL, in-process.

- intake: ``record_cases`` in pages (as the CRM pull and the webhook burst path record them);
- mapping: ``map_received`` (cases -> commands with their keys);
- settlement: ``dispatch_all`` with a connector that answers at once (mostly confirmed, some
  refused, some to retry), so only the hub's own work is timed: claim, attempts, states, CRM
  notes and work items.

PostgreSQL is compared with SQLite measured in the same run (target: within 1.2 times, i.e. a
ratio of at least 0.83).
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from bench.cases import mixed_cases
from bench.report import Figure
from bench.sizes import Size
from bench.systems import timed
from connectors.base import Command, Connector, ConnectorConfig, Outcome, OutcomeStatus, Update
from hub import dispatch, intake
from hub.ledger import db

PG_TARGET = 1 / 1.2
SYSTEMS = ("revenues_northgate", "benefits_academy", "licensing_uniform", "waste_bartec")


class InstantConnector(Connector[ConnectorConfig]):
    """Answers every command at once: 1 in 10 refused, 1 in 25 to retry, the rest confirmed."""

    name = "instant"
    domain = "bench"
    default_conn_id = "bench_instant"
    Config = ConnectorConfig
    operations = {}

    def __init__(self) -> None:
        super().__init__(ConnectorConfig())
        self.count = 0

    def check(self) -> None:
        return None

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        outcomes = []
        for command in commands:
            self.count += 1
            if self.count % 10 == 0:
                outcomes.append(Outcome(command.key, OutcomeStatus.REJECTED, error_class="Rejected",
                                        message="account is not live", code="AccountNotLive"))
            elif self.count % 25 == 0:
                outcomes.append(Outcome(command.key, OutcomeStatus.RETRY, message="HTTP 503",
                                        error_class="TransientError", code="http-503"))
            else:
                outcomes.append(Outcome(command.key, OutcomeStatus.CONFIRMED,
                                        reference=f"RQ{self.count:08d}",
                                        details={"balance_pence": 12345}))
        return outcomes

    def fetch_updates(self, since: datetime) -> list[Update]:
        return []


def _measure(url: str, size: Size) -> dict[str, float]:
    db.migrate(url)
    cases = mixed_cases(size.ledger_cases, prefix="LEDGER")
    with timed() as recording:
        for start in range(0, len(cases), size.batch_size):
            intake.record_cases(cases[start:start + size.batch_size], source="pull", url=url)
    with timed() as mapping:
        stats = intake.map_received(url=url, limit=len(cases))
    connector = InstantConnector()
    with timed() as settling:
        for system in SYSTEMS:
            dispatch.dispatch_all(connector, system, batch_size=size.batch_size,
                                  max_batches=10 ** 6, url=url)
    db.engine(url).dispose()
    n = len(cases)
    return {"intake": n / recording.seconds, "mapping": n / mapping.seconds,
            "settle": connector.count / settling.seconds,
            "all": n / (recording.seconds + mapping.seconds + settling.seconds),
            "commands": float(stats.commands)}


def run(size: Size, runs: int, workdir: Path) -> list[Figure]:
    from tests.support.databases import POSTGRES_ADMIN_URL, fresh_database

    intake_sqlite = Figure("5", "intake: record_cases in pages (SQLite)", "cases/s", target=1000)
    intake_pg = Figure("5", "intake on PostgreSQL", "cases/s", anchor="SQLite, same run",
                       target=PG_TARGET)
    mapping_sqlite = Figure("5", "mapping: cases -> commands (SQLite)", "cases/s")
    mapping_pg = Figure("5", "mapping on PostgreSQL", "cases/s", anchor="SQLite, same run",
                        target=PG_TARGET)
    settle_sqlite = Figure("5", "settle: claim, attempts, states, notes (SQLite)", "commands/s")
    settle_pg = Figure("5", "settle on PostgreSQL", "commands/s", anchor="SQLite, same run",
                       target=PG_TARGET)
    whole_pg = Figure("5", "whole ledger path on PostgreSQL", "cases/s", anchor="SQLite, same run",
                      target=PG_TARGET)
    intake.default_mappings()   # loaded once per process, before any clock starts
    for number in range(runs):
        rundir = workdir / f"ledger-{number}"
        rundir.mkdir(parents=True)
        sqlite = _measure(f"sqlite:///{rundir / 'ledger.db'}", size)
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(fresh_database(POSTGRES_ADMIN_URL, "hub_bench_ledger"))
            pg = _measure(url, size)
        intake_sqlite.add(sqlite["intake"])
        intake_pg.add(pg["intake"], sqlite["intake"])
        mapping_sqlite.add(sqlite["mapping"])
        mapping_pg.add(pg["mapping"], sqlite["mapping"])
        settle_sqlite.add(sqlite["settle"])
        settle_pg.add(pg["settle"], sqlite["settle"])
        whole_pg.add(pg["all"], sqlite["all"])
    note = f"{size.ledger_cases} mixed cases, batches of {size.batch_size}"
    intake_sqlite.note = note
    return [intake_sqlite, intake_pg, mapping_sqlite, mapping_pg, settle_sqlite, settle_pg,
            whole_pg]
