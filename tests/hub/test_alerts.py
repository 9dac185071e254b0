"""Alerts: a failed DAG run and a missed Deadline Alert post to the webhook and send an e-mail."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request

from hub import alerts
from simulators.serving import serve_in_thread
from tests.support.smtp import smtp_sink


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    received: list[dict] = []
    hook = FastAPI()

    @hook.post("/alerts")
    async def take(request: Request) -> dict:
        received.append(await request.json())
        return {"ok": True}

    with serve_in_thread(hook) as url, smtp_sink() as sink:
        monkeypatch.setenv("HUB_ALERT_WEBHOOK_URL", f"{url}/alerts")
        monkeypatch.setenv("HUB_ALERT_EMAIL", "integration-support@council.example")
        monkeypatch.setenv("HUB_SMTP_HOST", sink.host)
        monkeypatch.setenv("HUB_SMTP_PORT", str(sink.port))
        monkeypatch.setenv("HUB_AIRFLOW_UI_URL", "http://airflow.example:8080")
        yield received, sink


def test_a_failed_dag_run_alerts_by_webhook_and_email(receivers) -> None:
    received, sink = receivers
    context = {"dag_run": SimpleNamespace(dag_id="revenues_northgate", run_id="scheduled__2026-03-01T10:00"),
               "task_instance": SimpleNamespace(task_id="send_batch"),
               "exception": RuntimeError("Mr Test Person at 1 Mill Lane")}
    alerts.on_dag_failure(context)
    assert received == [{"kind": "dag_failed", "dag_id": "revenues_northgate",
                         "run_id": "scheduled__2026-03-01T10:00",
                         "summary": "DAG revenues_northgate failed at task send_batch (RuntimeError)",
                         "link": "http://airflow.example:8080/dags/revenues_northgate/runs/"
                                 "scheduled__2026-03-01T10%3A00"}]
    [message] = sink.messages
    assert message["To"] == "integration-support@council.example"
    assert "revenues_northgate failed" in message["Subject"]
    assert "Test Person" not in message.get_payload() and "Mill Lane" not in str(received)


def test_a_missed_deadline_alerts_from_the_triggerer(receivers) -> None:
    received, sink = receivers
    context = {"dag_run": {"dag_id": "crm_writeback", "dag_run_id": "asset_triggered__x"},
               "deadline": {"id": "d1", "deadline_time": "2026-03-01T10:30:00+00:00"}}
    # the triggerer runs it in its own event loop (a thread here: the browser tests' loop may be running)
    with ThreadPoolExecutor(1) as pool:
        sent = pool.submit(asyncio.run, alerts.deadline_missed(context=context, minutes=30)).result()
    assert sent == {"webhook": True, "email": True}
    assert received[0]["kind"] == "deadline_missed"
    assert received[0]["summary"] == "DAG crm_writeback run is late: not finished 30 min after it was queued"
    assert len(sink.messages) == 1


def test_an_undeliverable_alert_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulators.serving import free_port

    monkeypatch.setenv("HUB_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/alerts")
    monkeypatch.setenv("HUB_ALERT_EMAIL", "ops@council.example")
    monkeypatch.setenv("HUB_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HUB_SMTP_PORT", str(free_port()))
    assert alerts.send(alerts.Alert("dag_failed", "d", "r", "s", "l")) == {"webhook": False, "email": False}


def test_hub_dags_carry_the_failure_callback_and_deadlines() -> None:
    from hub.orchestration import dispatch_dag, housekeeping_dag

    dag = dispatch_dag("revenues_northgate")
    assert alerts.on_dag_failure in (dag.on_failure_callback if isinstance(dag.on_failure_callback, list)
                                     else [dag.on_failure_callback])
    [deadline] = dag.deadline
    assert deadline.callback.path == "hub.alerts.deadline_missed"
    assert deadline.interval.total_seconds() == 30 * 60
    assert not housekeeping_dag().deadline
