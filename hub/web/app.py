"""FastAPI app: the signed CRM webhook, health, per-system figures and work items.

Run with ``uvicorn hub.web.app:app``. Settings come from the environment: HUB_DATABASE_URL,
CRM_WEBHOOK_SECRET (required for the webhook), HUB_AIRFLOW_API_URL/USERNAME/PASSWORD (optional
trigger). Building the app does no I/O.
"""
from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Request
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy.exc import IntegrityError

from connectors.errors import PermanentError, Rejected, TransientError
from connectors.transports.httplog import redact_http_client_logs
from crm_adapter.webhook import webhook_router
from hub import intake, reports, workitems
from hub.airflow_trigger import trigger_from_env
from hub.ledger.db import session_scope
from hub.ledger.models import WebhookDelivery, utcnow
from hub.lookups import Lookups


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


log = logging.getLogger(__name__)


def in_background(trigger: Callable[[], None] | None) -> Callable[[], None] | None:
    """Run the Airflow trigger off the request thread: the CRM gets its 202 without waiting."""
    if trigger is None:
        return None

    def run() -> None:
        try:
            trigger()
        except Exception as exc:   # the scheduled intake picks the case up anyway
            log.warning("Airflow trigger failed (%s); the next scheduled intake will run it",
                        type(exc).__name__)

    return lambda: threading.Thread(target=run, name="airflow-trigger", daemon=True).start()


def _plain(value: str) -> str:
    """Text every ledger database keeps alike: no NUL or other control character (line breaks
    and tabs allowed)."""
    if any(ord(c) < 32 and c not in "\t\n\r" or c == "\x7f" for c in value):
        raise ValueError("contains a control character")
    return value


class CloseWorkItem(BaseModel):
    """Checked at the edge against the columns it lands in (``work_items``)."""

    resolution: Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_plain)]
    closed_by: Annotated[str, Field(min_length=1, max_length=80), AfterValidator(_plain)]


def _require_api_token(authorization: str | None) -> None:
    """Bearer token from HUB_API_TOKEN for the hub's API (lookups, work items)."""
    expected = os.environ.get("HUB_API_TOKEN", "")
    if not expected:
        raise HTTPException(503, "the API is switched off: HUB_API_TOKEN is not set")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "a valid bearer token is required")


def create_app(*, url: str | None = None, secret: Any = None, trigger: Any = "env",
               lookups: Lookups | None = None) -> FastAPI:
    """The app; ``secret`` (callable returning bytes), ``trigger`` and ``lookups`` may be injected."""
    redact_http_client_logs()   # the Airflow trigger and look-ups log URLs: never query strings
    app = FastAPI(title="Council integration hub", version="0.1.0")
    lookups = lookups or Lookups()
    app.include_router(webhook_router(
        secret=secret or _secret,
        record_case=lambda case: intake.record_case(case, source="webhook", url=url),
        claim_delivery=lambda delivery_id: claim_delivery(delivery_id, url),
        release_delivery=lambda delivery_id: release_delivery(delivery_id, url),
        record_invalid=lambda delivery_id, error, body: intake.record_inbound_rejection(
            source="webhook", delivery_id=delivery_id, error=error, body=body, url=url),
        trigger=in_background(trigger_from_env()) if trigger == "env" else trigger))

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/systems")
    def systems() -> dict[str, dict[str, int]]:
        return reports.system_figures(url)

    @app.get("/api/lookups/{system}/{kind}")
    def lookup(system: str, kind: str, request: Request,
               authorization: str | None = Header(default=None)) -> dict[str, Any]:
        """Read-through query to a back office, e.g.
        ``/api/lookups/waste_bartec/waste.collection_slots?uprn=...&service=bulky``."""
        _require_api_token(authorization)
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
                   authorization: str | None = Header(default=None)) -> list[dict[str, Any]]:
        _require_api_token(authorization)
        with session_scope(url) as session:
            return [{"id": i.id, "team": i.team, "system": i.system, "kind": i.kind,
                     "reason": i.reason, "state": i.state, "case_id": i.case_id,
                     "created_at": i.created_at.isoformat()}
                    for i in workitems.list_work_items(session, team=team)]

    @app.post("/api/work-items/{item_id}/close")
    def close_item(item_id: int, body: CloseWorkItem,
                   authorization: str | None = Header(default=None)) -> dict[str, Any]:
        _require_api_token(authorization)
        with session_scope(url) as session:
            try:
                item = workitems.close_work_item(session, item_id, resolution=body.resolution,
                                                 closed_by=body.closed_by)
            except KeyError as exc:
                raise HTTPException(404, str(exc)) from exc
            return {"id": item.id, "state": item.state}

    return app


app = create_app()
