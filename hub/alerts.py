"""Alerts to people when a DAG run fails or runs past its deadline: a JSON post to a webhook
(``HUB_ALERT_WEBHOOK_URL``: Teams, Slack, an incident tool) and an e-mail (``HUB_ALERT_EMAIL``, over
the SMTP settings of ``hub.mail``). Either may be left unset; an alert that cannot be delivered is
logged and never fails the run. Alerts carry DAG ids, run ids, task ids and error classes only.

- ``on_dag_failure``: Airflow's DAG ``on_failure_callback`` (every hub DAG has it);
- ``deadline_missed``: an Airflow 3 Deadline Alert callback (``AsyncCallback``, run in the
  triggerer) for dispatch, intake and write-back runs not finished ``HUB_DEADLINE_MINUTES`` (30)
  after they were queued.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import httpx

from hub import mail

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Alert:
    kind: str
    """``dag_failed`` or ``deadline_missed``."""
    dag_id: str
    run_id: str
    summary: str
    link: str

    @property
    def subject(self) -> str:
        return f"[Integration hub] {self.summary}"

    def body(self) -> str:
        return (f"{self.summary}\n\nDAG: {self.dag_id}\nRun: {self.run_id}\n"
                f"Open the run in Airflow: {self.link}\n\nThis alert holds no case details.")


def _link(dag_id: str, run_id: str) -> str:
    base = (os.environ.get("HUB_AIRFLOW_UI_URL") or os.environ.get("HUB_AIRFLOW_API_URL") or "").rstrip("/")
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _targets() -> tuple[str | None, list[str]]:
    emails = [a.strip() for a in os.environ.get("HUB_ALERT_EMAIL", "").split(",") if a.strip()]
    return os.environ.get("HUB_ALERT_WEBHOOK_URL") or None, emails


def send(alert: Alert) -> dict[str, bool]:
    """Deliver an alert to the webhook and by e-mail; returns what was delivered."""
    webhook, emails = _targets()
    sent = {"webhook": False, "email": False}
    if webhook:
        try:
            httpx.post(webhook, json=asdict(alert), timeout=TIMEOUT_SECONDS).raise_for_status()
            sent["webhook"] = True
        except httpx.HTTPError as exc:
            log.warning("alert %s for %s: webhook failed (%s)", alert.kind, alert.dag_id, type(exc).__name__)
    settings = mail.SmtpSettings.from_env()
    if emails and settings is not None:
        try:
            mail.send(settings, emails, alert.subject, alert.body())
            sent["email"] = True
        except Exception as exc:   # an alert never fails the run it reports on
            log.warning("alert %s for %s: e-mail failed (%s)", alert.kind, alert.dag_id, type(exc).__name__)
    if not (webhook or emails):
        log.warning("alert %s for %s not sent: set HUB_ALERT_WEBHOOK_URL or HUB_ALERT_EMAIL",
                    alert.kind, alert.dag_id)
    return sent


def on_dag_failure(context: dict[str, Any]) -> None:
    """DAG ``on_failure_callback``: which run failed, at which task, with which error class."""
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    run_id = getattr(dag_run, "run_id", None) or str(context.get("run_id") or "?")
    ti = context.get("task_instance") or context.get("ti")
    task = getattr(ti, "task_id", None)
    error = context.get("exception")
    what = f"DAG {dag_id} failed" + (f" at task {task}" if task else "")
    if error is not None:
        what += f" ({type(error).__name__})"
    send(Alert("dag_failed", str(dag_id), str(run_id), what, _link(str(dag_id), str(run_id))))


async def deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, bool]:
    """Deadline Alert callback (runs in the triggerer): the run is late."""
    dag_run = (context or {}).get("dag_run") or {}
    dag_id = str(dag_run.get("dag_id") or kwargs.get("dag_id") or "?")
    run_id = str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "?")
    minutes = kwargs.get("minutes")
    summary = f"DAG {dag_id} run is late" + (f": not finished {minutes} min after it was queued"
                                            if minutes else "")
    return await asyncio.to_thread(send, Alert("deadline_missed", dag_id, run_id, summary,
                                               _link(dag_id, run_id)))
