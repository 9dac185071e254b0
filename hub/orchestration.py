"""DAG builders: the shapes every DAG file uses, so that DAG files stay a few lines each.

Nothing here runs at import or parse time; tasks call hub functions when they execute. Assets link
the DAGs: intake emits ``hub://ledger/commands`` (dispatch listens), dispatch and status sync emit
``hub://ledger/outbox`` (write-back listens), and the webhook receiver posts ``hub://crm/cases``
events (intake listens). Every DAG also runs on a timetable, so nothing waits on an event alone.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Asset, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from hub.orchestration_assets import COMMANDS_URI, CRM_CASES_URI, OUTBOX_URI

CRM_CASES = Asset(CRM_CASES_URI, group="hub")
COMMANDS = Asset(COMMANDS_URI, group="hub")
OUTBOX = Asset(OUTBOX_URI, group="hub")

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
BATCH_SIZE = int(os.environ.get("HUB_BATCH_SIZE", "200"))
MAX_BATCHES = int(os.environ.get("HUB_MAX_BATCHES", "20"))
DEFAULT_ARGS: dict[str, Any] = {"retries": int(os.environ.get("HUB_TASK_RETRIES", "3")),
                                "retry_delay": timedelta(seconds=30),
                                "retry_exponential_backoff": True,
                                "max_retry_delay": timedelta(minutes=10)}


def _schedule(cron: str, *assets: Asset) -> AssetOrTimeSchedule:
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=list(assets))


DEADLINE_MINUTES = int(os.environ.get("HUB_DEADLINE_MINUTES", "30"))


def _deadline() -> Any:
    """Airflow 3 Deadline Alert: a run not finished DEADLINE_MINUTES after it was queued
    (``HUB_DEADLINE_MINUTES=0`` switches them off)."""
    if DEADLINE_MINUTES <= 0:
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    from hub.alerts import deadline_missed

    return DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT,
                         interval=timedelta(minutes=DEADLINE_MINUTES),
                         callback=AsyncCallback(deadline_missed, kwargs={"minutes": DEADLINE_MINUTES}))


def _dag(dag_id: str, schedule: Any, doc: str, tags: list[str], *, deadline: bool = False) -> DAG:
    from hub.alerts import on_dag_failure

    return DAG(dag_id=dag_id, schedule=schedule, start_date=START, catchup=False, max_active_runs=1,
               default_args=DEFAULT_ARGS, tags=["hub", *tags], doc_md=doc,
               on_failure_callback=on_dag_failure, deadline=_deadline() if deadline else None)


@contextlib.contextmanager
def _fail_fast_on_permanent_error() -> Iterator[None]:
    """PermanentError: fail the task without retries (a person must fix configuration)."""
    from airflow.exceptions import AirflowFailException

    from connectors.errors import PermanentError

    try:
        yield
    except PermanentError as exc:
        raise AirflowFailException(str(exc)) from exc


def intake_dag(cron: str = "*/5 * * * *") -> DAG:
    """Pull changed CRM cases, record them, map them to commands."""
    with _dag("crm_intake", _schedule(cron, CRM_CASES),
              "Pull CRM cases changed since the stored cursor (webhook deliveries are already "
              "recorded), then map every received case into back-office commands.",
              ["crm", "intake"], deadline=True) as dag:

        @task
        def pull_cases() -> int:
            from hub import connections, intake

            with _fail_fast_on_permanent_error():
                return intake.pull_from_crm(connections.crm_client())

        @task(outlets=[COMMANDS])
        def map_cases(_pulled: int) -> dict[str, int]:
            from hub import intake

            return vars(intake.map_received())

        map_cases(pull_cases())
    return dag


def dispatch_dag(system_id: str, cron: str = "*/10 * * * *") -> DAG:
    """Send a system's pending commands in batches (one mapped task per batch, not per record)."""
    with _dag(system_id, _schedule(cron, COMMANDS),
              f"Send pending commands to **{system_id}** in batches of {BATCH_SIZE}; each batch is "
              "one mapped task. Outcomes go to the ledger, the CRM outbox and work items.",
              ["dispatch", system_id.split("_")[0]], deadline=True) as dag:

        @task
        def plan() -> list[int]:
            from hub import dispatch

            return dispatch.plan_batches(system_id, batch_size=BATCH_SIZE, max_batches=MAX_BATCHES)

        @task(outlets=[OUTBOX], max_active_tis_per_dagrun=2)
        def send_batch(batch: int, **context: Any) -> dict[str, Any]:
            from hub import connections, dispatch

            with _fail_fast_on_permanent_error():
                connector = connections.connector_for(system_id)
                stats = dispatch.dispatch_batch(connector, system_id, batch_size=BATCH_SIZE,
                                                run_id=context.get("run_id"))
            return vars(stats) | {"batch": batch}

        send_batch.expand(batch=plan())
    return dag


def status_sync_dag(system_id: str, cron: str = "*/15 * * * *") -> DAG:
    """Bring later back-office changes (and late answers) into the ledger and the CRM outbox."""
    with _dag(f"{system_id}_status_sync", _schedule(cron),
              f"Poll **{system_id}** for changes since the stored cursor; apply each once; open "
              "work items for answers past due.", ["status-sync", system_id.split("_")[0]]) as dag:

        @task(outlets=[OUTBOX])
        def sync() -> dict[str, int]:
            from hub import connections, status_sync

            with _fail_fast_on_permanent_error():
                return vars(status_sync.sync_system(connections.connector_for(system_id), system_id))

        sync()
    return dag


def writeback_dag(cron: str = "*/5 * * * *") -> DAG:
    """Deliver the outbox to the CRM."""
    with _dag("crm_writeback", _schedule(cron, OUTBOX),
              "Write outcomes and later status changes back to the CRM (reference, status, note); "
              "each message is applied once by its idempotency key.", ["crm", "write-back"],
              deadline=True) as dag:

        @task
        def deliver() -> dict[str, Any]:
            from hub import connections, outbox

            with _fail_fast_on_permanent_error():
                return vars(outbox.deliver_pending(connections.crm_client()))

        deliver()
    return dag


def desk_escalation_dag(cron: str = "*/15 * * * *") -> DAG:
    """E-mail each team its work items that have gone past their SLA (once per item)."""
    with _dag("hub_desk_escalation", _schedule(cron),
              "E-mail each back-office team the work items past their due time (SLAs in "
              "`hub/desk.yaml` or `HUB_DESK_CONFIG`), once per item, over `HUB_SMTP_HOST`.",
              ["desk"]) as dag:

        @task
        def escalate_overdue() -> dict[str, int]:
            from hub import escalation

            return vars(escalation.escalate_overdue())

        escalate_overdue()
    return dag


def housekeeping_dag(cron: str = "30 2 * * *") -> DAG:
    """Daily: blank personal data of finished work past the retention period."""
    with _dag("hub_housekeeping", _schedule(cron),
              "Blank the personal data of finished cases and commands older than "
              "`HUB_RETENTION_DAYS` (references, states and work items stay for audit).",
              ["housekeeping"]) as dag:

        @task
        def purge_personal_data() -> dict[str, int]:
            from hub import retention

            return vars(retention.purge_personal_data())

        purge_personal_data()
    return dag
