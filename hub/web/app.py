"""FastAPI app: the signed CRM webhook, health, per-system figures and work items.

Run with ``uvicorn hub.web.app:app``. Settings come from the environment: HUB_DATABASE_URL,
CRM_WEBHOOK_SECRET (required for the webhook), and for signals to Airflow (optional; the DAGs'
timetables pick the work up without them) HUB_SIGNAL_REDIS_URL, or HUB_AIRFLOW_API_URL with
HUB_AIRFLOW_USERNAME and HUB_AIRFLOW_PASSWORD(_FILE). Building the app does no I/O.
"""
from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy.exc import IntegrityError

from connectors.errors import PermanentError, Rejected, TransientError
from connectors.transports.httplog import redact_http_client_logs
from crm_adapter.models import CrmCase
from crm_adapter.webhook import webhook_router
from hub import intake, systems as instances, workitems
from hub.ledger.db import session_scope
from hub.ledger.models import CaseState, WebhookDelivery, utcnow
from hub.lookups import Lookups
from hub.orchestration_assets import assets_with_new_work
from hub.signals import SignalPublisher, publisher_from_env
from hub.web import auth, site


def _secret() -> bytes:
    value = os.environ.get("CRM_WEBHOOK_SECRET", "")
    if not value:
        raise RuntimeError("CRM_WEBHOOK_SECRET is not set")
    return value.encode("utf-8")


def claim_delivery(delivery_id: str, url: str | None = None) -> bool:
    """Remember a webhook delivery id; False when it was seen before (a replay)."""
    try:
        with session_scope(url) as session:
            session.add(WebhookDelivery(delivery_id=delivery_id, received_at=utcnow()))
        return True
    except IntegrityError:
        return False


def release_delivery(delivery_id: str, url: str | None = None) -> None:
    with session_scope(url) as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is not None:
            session.delete(row)


def record_and_signal(case: CrmCase, *, url: str | None,
                      signals: SignalPublisher | None) -> intake.Recorded | None:
    """Record and map a webhook case, then mark the assets with new work (no I/O, never raises):
    the dispatch DAG of each system that got commands, the write-back of an invalid case's notice,
    or intake when mapping was left to it."""
    recorded = intake.record_and_map(case, source="webhook", url=url)
    if recorded is not None and signals is not None:
        signals.mark(*assets_with_new_work(
            systems=recorded.systems, outbox=recorded.state == CaseState.INVALID.value,
            unmapped=recorded.state == CaseState.RECEIVED.value))
    return recorded


def _plain(value: str) -> str:
    """Text every ledger database keeps alike: no NUL or other control character (line breaks
    and tabs allowed)."""
    if any(ord(c) < 32 and c not in "\t\n\r" or c == "\x7f" for c in value):
        raise ValueError("contains a control character")
    return value


class CloseWorkItem(BaseModel):
    """Checked at the edge against the columns it lands in: ``work_items.resolution``, and
    ``closed_by`` both ``work_items.assigned_to`` (80) and ``audit_log.actor`` as ``api:<name>``
    (80), hence 60."""

    resolution: Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_plain)]
    closed_by: Annotated[str, Field(min_length=1, max_length=60), AfterValidator(_plain)]


_UNSET: Any = object()


def create_app(*, url: str | None = None, secret: Any = None, signals: Any = "env",
               lookups: Lookups | None = None, trigger: Any = _UNSET) -> FastAPI:
    """The app; ``secret`` (callable returning bytes), ``signals`` (a SignalPublisher, or None for
    none) and ``lookups`` may be injected. ``trigger=None`` is the former spelling of
    ``signals=None``."""
    if trigger is not _UNSET:
        if trigger is not None:
            raise TypeError("create_app(trigger=...) is replaced by signals=SignalPublisher(...)")
        signals = None
    publisher: SignalPublisher | None = publisher_from_env() if signals == "env" else signals
    redact_http_client_logs()   # signals and look-ups log URLs: never query strings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if publisher is not None:
            publisher.close()   # send what is marked, once

    app = FastAPI(title="Council integration hub", version="0.1.0", lifespan=lifespan)
    lookups = lookups or Lookups()
    app.include_router(webhook_router(
        secret=secret or _secret,
        record_case=lambda case: record_and_signal(case, url=url, signals=publisher),
        claim_delivery=lambda delivery_id: claim_delivery(delivery_id, url),
        release_delivery=lambda delivery_id: release_delivery(delivery_id, url),
        record_invalid=lambda delivery_id, error, body: intake.record_inbound_rejection(
            source="webhook", delivery_id=delivery_id, error=error, body=body, url=url)))

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/signals", dependencies=[Depends(auth.operations_or_token)])
    def signal_figures() -> dict[str, Any]:
        """Signals to Airflow since start: counts per asset, no personal data."""
        return publisher.snapshot() if publisher is not None else {"transport": None}

    @app.get("/api/systems", dependencies=[Depends(auth.operations_or_token)])
    def systems() -> dict[str, dict[str, Any]]:
        """Every registered instance: figures (zero where nothing happened) and last check."""
        return instances.overview(url)

    @app.get("/api/lookups/{system}/{kind}", dependencies=[Depends(auth.require_api_token)])
    def lookup(system: str, kind: str, request: Request) -> dict[str, Any]:
        """Read-through query to a back office, e.g.
        ``/api/lookups/waste_bartec/waste.collection_slots?uprn=...&service=bulky``."""
        try:
            result = lookups.lookup(system, kind, dict(request.query_params))
        except KeyError as exc:
            raise HTTPException(404, f"unknown system {system!r}") from exc
        except NotImplementedError as exc:
            raise HTTPException(404, f"{system} has no lookup {kind!r}") from exc
        except Rejected as exc:
            raise HTTPException(422, {"message": exc.message, "field": exc.field}) from exc
        except TransientError as exc:
            raise HTTPException(503, f"{system} is not answering; try again shortly") from exc
        except PermanentError as exc:
            raise HTTPException(502, f"{system} is not configured correctly") from exc
        return {"system": system, "kind": kind, "result": result}

    @app.get("/api/work-items")
    def list_items(team: str | None = None,
                   caller: Any = Depends(auth.api_caller)) -> list[dict[str, Any]]:
        """Open work items (the bearer token sees every team; a signed-in person their own)."""
        teams = None if isinstance(caller, auth.MachineCaller) else caller.visible_teams()
        with session_scope(url) as session:
            return [{"id": i.id, "team": i.team, "system": i.system, "kind": i.kind,
                     "reason": i.reason, "state": i.state, "case_id": i.case_id,
                     "created_at": i.created_at.isoformat(),
                     "due_at": i.due_at.isoformat() if i.due_at else None}
                    for i in workitems.list_work_items(session, team=team, teams=teams)]

    @app.post("/api/work-items/{item_id}/close", dependencies=[Depends(auth.require_api_token)])
    def close_item(item_id: int, body: CloseWorkItem) -> dict[str, Any]:
        with session_scope(url) as session:
            try:
                item = workitems.close_work_item(session, item_id, resolution=body.resolution,
                                                 closed_by=body.closed_by)
            except KeyError as exc:
                raise HTTPException(404, str(exc)) from exc
            return {"id": item.id, "state": item.state}

    site.install(app, url=url)
    return app


app = create_app()
