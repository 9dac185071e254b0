"""CRM simulator: the REST API the hub expects of a council's CRM (see docs/crm.md).

Bearer-token auth on ``/api``; an open ``/admin`` for tests and the demo: ``GET /admin/stats``,
and drift on purpose for reconciliation: ``POST /admin/cases/{crm_id}/lose-writeback`` (the CRM
loses the hub's write-backs: status back to ``new``, reference gone, keys forgotten) and
``POST /admin/cases/{crm_id}/status`` ``{"status"}`` (an agent changes the status by hand). When
given a webhook URL and secret, every created or changed case is pushed, signed, to the hub.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from simulators.crm.store import CASE_STATUSES, BadCursor, CrmStore, KeyConflict, UnknownCase
from simulators.world import demo_cases

log = logging.getLogger(__name__)

PUSH_TIMEOUT_SECONDS = 5.0


def webhook_headers(secret: bytes, body: bytes, delivery_id: str,
                    timestamp: int | None = None) -> dict[str, str]:
    """The headers of a signed push, as docs/crm.md specifies them (written here from the spec,
    not borrowed from the hub, so that a hub that misreads the spec fails a test).

    ``X-Hub-Signature-256`` = ``sha256=`` + hex HMAC-SHA256(secret, timestamp + "." + body).
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret, ts.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Hub-Timestamp": ts, "X-Hub-Delivery": delivery_id,
            "X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


class CaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_type: str = Field(min_length=1, max_length=100)
    data: dict[str, Any]
    channel: Literal["telephone", "face_to_face", "web", "email"] | None = None


class UpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["in_progress", "completed", "needs_review", "rejected"]
    note: str = Field(max_length=4000)
    backoffice_reference: str | None = Field(default=None, max_length=200)
    backoffice_system: str | None = Field(default=None, max_length=100)


class StatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal[CASE_STATUSES]  # type: ignore[valid-type]


class WebhookPusher:
    """Posts each changed case to the hub, signed; failures are logged, never raised."""

    def __init__(self, url: str, secret: bytes) -> None:
        self.url = url
        self._secret = secret

    def push(self, case: dict[str, Any]) -> bool:
        body = json.dumps(case, sort_keys=True).encode()
        delivery_id = uuid.uuid4().hex
        try:
            response = httpx.post(self.url, content=body, timeout=PUSH_TIMEOUT_SECONDS,
                                  headers=webhook_headers(self._secret, body, delivery_id))
        except httpx.HTTPError as exc:
            log.warning("CRM sim: push of case %s v%s failed (%s)", case["crm_id"],
                        case["version"], type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("CRM sim: push of case %s v%s answered HTTP %s", case["crm_id"],
                        case["version"], response.status_code)
            return False
        return True


def _paged(read: Any, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """One page from a cursor-paged store read; an unknown cursor is a 422 naming it."""
    try:
        return read(cursor, limit)
    except BadCursor as exc:
        raise HTTPException(422, [{"loc": ["query", "cursor"], "msg": "unknown cursor",
                                   "type": "value_error"}]) from exc


def seed_demo_cases(store: CrmStore) -> int:
    """Load the shared demo cases (idempotent: unchanged cases keep their version)."""
    changed = 0
    for case in demo_cases():
        changed += store.put_case(case["id"], case["case_type"], case["data"],
                                  channel=case.get("channel"), created_at=case.get("created_at")).changed
    return changed


def create_app(db_path: Path, *, token: str, webhook_url: str | None = None,
               webhook_secret: bytes | None = None, seed_demo: bool = False) -> FastAPI:
    """The simulator as an ASGI app backed by the SQLite file at ``db_path``."""
    if not token:
        raise ValueError("token is required")
    if webhook_url and not webhook_secret:
        raise ValueError("webhook_secret is required with webhook_url")
    store = CrmStore(Path(db_path))
    if seed_demo:
        seeded = seed_demo_cases(store)
        log.info("CRM sim: demo seed created or changed %d cases", seeded)
    pusher = WebhookPusher(webhook_url, webhook_secret) if webhook_url and webhook_secret \
        else None

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = f"Bearer {token}".encode()
        if authorization is None or not hmac.compare_digest(
                authorization.encode("utf-8", "replace"), expected):
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="CRM simulator", version="1")
    app.state.store = store
    app.state.pusher = pusher
    api = Depends(require_token)

    @app.get("/api/v1/cases", dependencies=[api])
    def list_changes(cursor: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
        cases, next_cursor = _paged(store.changes, cursor, limit)
        return {"cases": cases, "next_cursor": next_cursor}

    @app.get("/api/v1/cases/{crm_id}", dependencies=[api])
    def get_case(crm_id: str) -> dict[str, Any]:
        try:
            return store.get_case(crm_id)
        except UnknownCase as exc:
            raise HTTPException(404, "unknown case") from exc

    @app.put("/api/v1/cases/{crm_id}", dependencies=[api])
    def put_case(crm_id: str, body: CaseBody, response: Response) -> dict[str, Any]:
        result = store.put_case(crm_id, body.case_type, body.data, channel=body.channel)
        response.status_code = 201 if result.created else 200
        if result.changed and pusher is not None:
            pusher.push(result.case)
        return result.case

    @app.post("/api/v1/cases/{crm_id}/updates", dependencies=[api])
    def post_update(crm_id: str, body: UpdateBody, response: Response,
                    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
                    ) -> dict[str, Any]:
        try:
            applied = store.apply_update(crm_id, idempotency_key, body.status, body.note,
                                         body.backoffice_reference, body.backoffice_system)
        except UnknownCase as exc:
            raise HTTPException(404, "unknown case") from exc
        except KeyConflict as exc:
            raise HTTPException(409, "idempotency key already used for another case") from exc
        response.status_code = 201 if applied else 200
        return {"crm_id": crm_id, "idempotency_key": idempotency_key, "applied": applied}

    @app.get("/api/v1/cases/{crm_id}/updates", dependencies=[api])
    def list_updates(crm_id: str) -> dict[str, Any]:
        try:
            return {"crm_id": crm_id, "updates": store.updates(crm_id)}
        except UnknownCase as exc:
            raise HTTPException(404, "unknown case") from exc

    @app.get("/api/v1/case-states", dependencies=[api])
    def list_case_states(cursor: str | None = None,
                         limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
        states, next_cursor = _paged(store.case_states, cursor, limit)
        return {"case_states": states, "next_cursor": next_cursor}

    @app.get("/admin/stats")
    def stats() -> dict[str, Any]:
        return store.stats()

    @app.post("/admin/cases/{crm_id}/lose-writeback")
    def lose_writeback(crm_id: str) -> dict[str, Any]:
        try:
            lost = store.lose_writebacks(crm_id)
        except UnknownCase as exc:
            raise HTTPException(404, "unknown case") from exc
        return {"crm_id": crm_id, "lost": lost}

    @app.post("/admin/cases/{crm_id}/status")
    def set_status(crm_id: str, body: StatusBody) -> dict[str, Any]:
        try:
            store.set_status(crm_id, body.status)
        except UnknownCase as exc:
            raise HTTPException(404, "unknown case") from exc
        return {"crm_id": crm_id, "status": body.status}

    return app
