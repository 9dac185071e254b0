"""The demo's order of DAG runs, the order a scheduler would trigger them in, for any runner.

``make demo`` runs each stage with ``dag.test()`` (one DAG after another, in process); the real
stack's demo triggers a stage's DAGs together through Airflow's REST API and lets the scheduler run
them. A stage is a list of DAG ids that may run at the same time; the runner returns their states.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import func, select

RunStage = Callable[[list[str]], list[str]]


def awaiting(system: str) -> int:
    """Commands sent to ``system`` whose answer has not come yet (file exchanges answer later)."""
    from hub.ledger.db import session_scope
    from hub.ledger.models import Command, CommandState

    with session_scope() as session:
        return int(session.scalar(select(func.count(Command.id)).where(
            Command.system == system, Command.state == CommandState.AWAITING.value)) or 0)


def run_plan(plan: str, systems: list[str], asynchronous: list[str], run_stage: RunStage, *,
             answer_timeout: float = 90.0) -> int:
    """``deliver``: intake, dispatch to every system, status sync until the asynchronous systems
    have answered, write-back. ``sync``: status sync of every system, write-back. ``reconcile``:
every system's reconciliation, then dispatch (resends go the normal way) and write-back. Returns the
    number of DAG runs that did not succeed."""
    states: list[str] = []
    if plan == "deliver":
        states += run_stage(["crm_intake"])
        states += run_stage(list(systems))
        for system in asynchronous:
            deadline = time.monotonic() + answer_timeout
            states += run_stage([f"{system}_status_sync"])
            while awaiting(system) and time.monotonic() < deadline:
                time.sleep(2)
                states += run_stage([f"{system}_status_sync"])
        states += run_stage(["crm_writeback"])
    elif plan == "reconcile":
        states += run_stage([f"{system}_reconcile" for system in systems])
        states += run_stage(list(systems))      # what reconciliation sent again goes out
        states += run_stage(["crm_writeback"])
    elif plan == "sync":
        states += run_stage([f"{system}_status_sync" for system in systems])
        states += run_stage(["crm_writeback"])
    else:
        raise ValueError(f"unknown plan {plan!r}")
    return sum(state != "success" for state in states)
