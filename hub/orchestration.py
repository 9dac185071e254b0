"""DAG builders: the shapes every DAG file uses, so that DAG files stay a few lines each.

Nothing here runs at import or parse time; tasks call hub functions when they execute. How a case
travels (see docs/operations.md, "How work reaches each DAG"):

- the webhook records the case and maps it at once, then signals ``hub://ledger/commands/<system>``
  for each system that got new commands: only that system's dispatch DAG starts;
- the dispatch task sends the commands and writes the outcomes back to the CRM itself; only what it
  could not deliver makes it emit ``hub://ledger/outbox`` for the ``crm_writeback`` DAG;
- ``crm_intake`` (pull + map) emits the per-system assets only for systems that got new commands.

Signals reach Airflow as Redis messages that each asset's ``AssetWatcher`` (common-messaging
``MessageQueueTrigger``, scheme ``redis+pubsub``) turns into asset events, when
``HUB_SIGNAL_CONN_ID`` names the Airflow Connection of that Redis; without it the assets have no
watchers (the web app may still post events through the REST API). Every DAG also runs on a
timetable, so a lost signal costs only time.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, AssetWatcher, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from hub.orchestration_assets import (COMMANDS_ALIAS, CRM_CASES_URI, OUTBOX_ALIAS, OUTBOX_URI,
                                      channel_for, commands_uri)

COMMANDS_HANDOFF = AssetAlias(COMMANDS_ALIAS)
OUTBOX_HANDOFF = AssetAlias(OUTBOX_ALIAS)

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
BATCH_SIZE = int(os.environ.get("HUB_BATCH_SIZE", "200"))
MAX_BATCHES = int(os.environ.get("HUB_MAX_BATCHES", "20"))
DEFAULT_ARGS: dict[str, Any] = {"retries": int(os.environ.get("HUB_TASK_RETRIES", "3")),
                                "retry_delay": timedelta(seconds=30),
                                "retry_exponential_backoff": True,
                                "max_retry_delay": timedelta(minutes=10)}
SIGNAL_CONN_ENV = "HUB_SIGNAL_CONN_ID"


def hub_asset(uri: str) -> Asset:
    """The hub's asset for ``uri``, with a Redis watcher when ``HUB_SIGNAL_CONN_ID`` is set."""
    return Asset(uri, group="hub", watchers=_watchers(uri))


def _watchers(uri: str) -> list[AssetWatcher]:
    conn_id = os.environ.get(SIGNAL_CONN_ENV)
    if not conn_id:
        return []
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    channel = channel_for(uri)
    poll = float(os.environ.get("HUB_SIGNAL_POLL_SECONDS", "0.5"))
    return [AssetWatcher(name=f"signal_{channel.replace('.', '_')}",
                         trigger=MessageQueueTrigger(scheme="redis+pubsub", channels=[channel],
                                                     redis_conn_id=conn_id, poll_interval=poll))]


def dispatch_lanes() -> int:
    """``HUB_DISPATCH_LANES`` (1): dispatch tasks per run that send at once (claims never overlap)."""
    return max(1, int(os.environ.get("HUB_DISPATCH_LANES", "1")))


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


# A dispatch DAG may run twice at once: every send claims its batch in the ledger (``hub.dispatch.
# claim_batch``, ``FOR UPDATE SKIP LOCKED``), exactly as its lanes already do side by side, so two
# runs never send one command twice. Why two: Airflow 3.3 can leave a DAG's cached "at
# max_active_runs" flag set after its last run finished (the DAG processor writes it from a count
# taken while the run was active; apache/airflow#71998, #73032), and the scheduler then creates no
# run for waiting asset events until the next parse. With a limit of 1 that stale flag always
# outlives the run; with 2, the other run still active when it is written clears it on finishing.
DISPATCH_MAX_ACTIVE_RUNS = 2


def _dag(dag_id: str, schedule: Any, doc: str, tags: list[str], *, deadline: bool = False,
         max_active_runs: int = 1) -> DAG:
    from hub.alerts import on_dag_failure

    return DAG(dag_id=dag_id, schedule=schedule, start_date=START, catchup=False,
               max_active_runs=max_active_runs,
               default_args=DEFAULT_ARGS, tags=["hub", *tags], doc_md=doc,
               on_failure_callback=on_dag_failure, deadline=_deadline() if deadline else None)


@contextlib.contextmanager
def _fail_fast_on_permanent_error() -> Iterator[None]:
    """PermanentError: fail the task without retries (a person must fix configuration)."""
    from airflow.sdk.exceptions import AirflowFailException

    from connectors.errors import PermanentError

    try:
        yield
    except PermanentError as exc:
        raise AirflowFailException(str(exc)) from exc


def _emit(context: dict[str, Any], alias: AssetAlias, uris: list[str]) -> None:
    """Asset events only for ``uris`` (an alias outlet emits nothing when none is added)."""
    for uri in uris:
        context["outlet_events"][alias].add(Asset(uri, group="hub"))


def intake_dag(cron: str = "*/5 * * * *") -> DAG:
    """Pull changed CRM cases, record them, map them to commands (the webhook's backstop)."""
    with _dag("crm_intake", _schedule(cron, hub_asset(CRM_CASES_URI)),
              "Pull CRM cases changed since the stored cursor, then map every received case into "
              "back-office commands. Webhook deliveries are recorded and mapped on arrival; this is "
              "the backstop. Emits `hub://ledger/commands/<system>` only for systems that got new "
              "commands.", ["crm", "intake"], deadline=True) as dag:

        @task
        def pull_cases() -> int:
            from hub import connections, intake

            with _fail_fast_on_permanent_error():
                return intake.pull_from_crm(connections.crm_client())

        @task(outlets=[COMMANDS_HANDOFF, OUTBOX_HANDOFF])
        def map_cases(_pulled: int, **context: Any) -> dict[str, Any]:
            from hub import intake

            stats = intake.map_received()
            _emit(context, COMMANDS_HANDOFF, [commands_uri(s) for s in sorted(stats.systems)])
            _emit(context, OUTBOX_HANDOFF, [OUTBOX_URI] if stats.invalid else [])
            return vars(stats)

        map_cases(pull_cases())
    return dag


def instance_dags() -> dict[str, DAG]:
    """Every instance's dispatch, status-sync and reconcile DAGs (``dags/back_offices.py``), with the
    schedules of the instances file: reading that file is the only I/O."""
    from connectors import catalog

    dags: dict[str, DAG] = {}
    for system_id, found in catalog.SYSTEMS.items():
        dags[f"dispatch_{system_id}"] = dispatch_dag(system_id, cron=found.dispatch)
        dags[f"status_sync_{system_id}"] = status_sync_dag(system_id, cron=found.status_sync)
        dags[f"reconcile_{system_id}"] = reconcile_dag(system_id, cron=found.reconcile)
    return dags


def _about(system_id: str) -> tuple[str, list[str]]:
    """The instance's description line and tags (domain, connector, team) for its DAGs."""
    from connectors import catalog

    found = catalog.SYSTEMS.get(system_id)
    if found is None:
        return "", [system_id.split("_")[0]]
    line = (f"{found.description}\n\n" if found.description else "") + (
        f"Instance of `{found.connector_id}`, connection `{found.conn_id}`, work items to team "
        f"`{found.team}`.\n\n")
    return line, sorted({found.domain, found.team})


def dispatch_dag(system_id: str, cron: str = "*/10 * * * *") -> DAG:
    """Send a system's pending commands in batches and write the outcomes back at once."""
    lanes = dispatch_lanes()
    about, tags = _about(system_id)
    with _dag(system_id, _schedule(cron, hub_asset(commands_uri(system_id))),
              f"{about}Send pending commands to **{system_id}** in batches of {BATCH_SIZE} (up to "
              f"{MAX_BATCHES} per task, {lanes} task(s) at once); after each batch, write its "
              "outcomes back to the CRM. Outcomes go to the ledger, the CRM outbox and work items; "
              "a write-back left undelivered hands over to `crm_writeback`.",
              ["dispatch", *tags], deadline=True, max_active_runs=DISPATCH_MAX_ACTIVE_RUNS) as dag:

        @task(outlets=[OUTBOX_HANDOFF])
        def send_batches(lane: int, **context: Any) -> dict[str, Any]:
            from hub import connections, handoff

            with _fail_fast_on_permanent_error():
                connector = connections.connector_for(system_id)
                try:
                    report = handoff.dispatch_and_write_back(
                        connector, system_id, batch_size=BATCH_SIZE, max_batches=MAX_BATCHES,
                        crm_client=connections.crm_client, run_id=context.get("run_id"))
                finally:
                    connector.close()   # connections kept across the task's batches
            _emit(context, OUTBOX_HANDOFF, [OUTBOX_URI] if report.hand_over else [])
            return report.as_dict() | {"lane": lane}

        send_batches.expand(lane=list(range(lanes)))
    return dag


def status_sync_dag(system_id: str, cron: str = "*/15 * * * *") -> DAG:
    """Bring later back-office changes (and late answers) into the ledger and write them back."""
    about, tags = _about(system_id)
    with _dag(f"{system_id}_status_sync", _schedule(cron),
              f"{about}Poll **{system_id}** for changes since the stored cursor; apply each once; "
              "open work items for answers past due; write the changes back to the CRM at once.",
              ["status-sync", *tags]) as dag:

        @task(outlets=[OUTBOX_HANDOFF])
        def sync(**context: Any) -> dict[str, Any]:
            from hub import connections, handoff, status_sync

            with _fail_fast_on_permanent_error():
                stats = vars(status_sync.sync_system(connections.connector_for(system_id), system_id))
            written = handoff.write_back_after_sync(system_id, crm_client=connections.crm_client)
            _emit(context, OUTBOX_HANDOFF, [OUTBOX_URI] if written["hand_over"] else [])
            return stats | written

        sync()
    return dag


def writeback_dag(cron: str = "*/5 * * * *") -> DAG:
    """Deliver the outbox to the CRM (the backstop of the write-back done by dispatch)."""
    with _dag("crm_writeback", _schedule(cron, hub_asset(OUTBOX_URI)),
              "Write outcomes and later status changes back to the CRM (reference, status, note); "
              "each message is applied once by its idempotency key. Dispatch and status sync "
              "deliver their own; this delivers what they could not, and invalid-case notices.",
              ["crm", "write-back"], deadline=True) as dag:

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
    """Daily: blank personal data of finished work past the retention period, and check every
    instance's connection (as ``hub systems --check``; results in ``connection_checks``)."""
    with _dag("hub_housekeeping", _schedule(cron),
              "Blank the personal data of finished cases and commands older than "
              "`HUB_RETENTION_DAYS` (references, states and work items stay for audit), and "
              "check every back-office instance's connection (`hub systems` shows the last "
              "result of each).", ["housekeeping"]) as dag:

        @task
        def purge_personal_data() -> dict[str, int]:
            from hub import retention

            return vars(retention.purge_personal_data())

        @task
        def check_connections() -> dict[str, Any]:
            from hub import systems

            return systems.scheduled_checks()

        purge_personal_data()
        check_connections()
    return dag


def reconcile_dag(system_id: str, cron: str = "15 1 * * *") -> DAG:
    """Nightly (and on demand): reconcile the CRM, the ledger and one back office."""
    about, tags = _about(system_id)
    with _dag(f"{system_id}_reconcile", _schedule(cron),
              f"{about}Compare the CRM, the ledger and **{system_id}**'s own records (streamed, merged by "
              "key); heal what is safe (write-backs delivered again, unknown outcomes settled and "
              "missing effects resent after a look-up by key, unmapped cases mapped) and open work "
              "items for the rest. Trigger with `{\"dry_run\": true}` to report without healing. "
              "Runs and findings: the hub's Reconciliation page.",
              ["reconcile", *tags]) as dag:

        @task(outlets=[COMMANDS_HANDOFF, OUTBOX_HANDOFF])
        def reconcile(**context: Any) -> dict[str, Any]:
            from hub.reconcile import engine

            conf = (context.get("dag_run") and context["dag_run"].conf) or {}
            with _fail_fast_on_permanent_error():
                report = engine.reconcile_configured(system_id, dry_run=bool(conf.get("dry_run")),
                                                     run_id=context.get("run_id"))
            _emit(context, COMMANDS_HANDOFF, [commands_uri(system_id)] if report.resent else [])
            return report.as_dict()

        reconcile()
    return dag
