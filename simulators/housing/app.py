"""The housing repairs simulator: the JSON API documented in docs/connectors/housing.md, on FastAPI,
state in SQLite, admin endpoints from ``simulators.kit``.

Written from the documented API alone (it never imports connector code), so a connector that
misreads the format fails its tests instead of agreeing with itself.
"""
from __future__ import annotations

import base64
import math
import secrets
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from simulators.housing import sample
from simulators.housing.store import NewJob, RepairsError, RepairsStore
from simulators.kit import Clock, FaultInjector, FaultSwitch, admin_router, drift_router
from simulators.world import demo_today

API = "/api/v2"


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")   # the API ignores fields it does not know


class Location(_Body):
    property_reference: str = Field(pattern=r"^\d{1,12}$")
    room: str | None = Field(default=None, max_length=60)
    detail: str | None = Field(default=None, max_length=200)


class Contact(_Body):
    name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=20)


class Appointment(_Body):
    slot_id: str = Field(min_length=1, max_length=40)


class JobCreate(_Body):
    client_reference: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    source_reference: str | None = Field(default=None, max_length=40)
    priority: Literal["EMERGENCY", "URGENT", "ROUTINE"]
    trade: str = Field(min_length=1, max_length=40)
    location: Location
    description: str = Field(min_length=1, max_length=2000)
    access_notes: str | None = Field(default=None, max_length=500)
    contact: Contact | None = None
    appointment: Appointment | None = None


class CancelBody(_Body):
    reason: str | None = Field(default=None, max_length=500)


class _Tokens:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def issue(self, client_id: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (client_id, time.monotonic() + self.ttl)
        return token

    def client_for(self, token: str) -> str | None:
        with self._lock:
            found = self._tokens.get(token)
        return found[0] if found and found[1] > time.monotonic() else None

    def expire(self) -> int:
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
        return count


def _error_response(exc: RepairsError) -> JSONResponse:
    if exc.status == 401:
        return JSONResponse({"error": exc.code}, status_code=401,
                            headers={"WWW-Authenticate": f'Bearer error="{exc.code}"'})
    if exc.status == 422:
        return JSONResponse({"errors": [{"field": exc.field, "code": exc.code,
                                         "message": exc.message}]}, status_code=422)
    error: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.field:
        error["target"] = exc.field
    if exc.existing_job_id:
        error["existing_job_id"] = exc.existing_job_id
    return JSONResponse({"error": error}, status_code=exc.status)


def _api_client(request: Request) -> str:
    """The API client whose bearer token the request carries, or 401."""
    header = request.headers.get("authorization", "")
    tokens: _Tokens = request.app.state.tokens
    found = tokens.client_for(header[7:]) if header.lower().startswith("bearer ") else None
    if found is None:
        raise RepairsError(401, "invalid_token", "token missing, unknown or expired")
    return found


Client = Annotated[str, Depends(_api_client)]


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user, password
        except (ValueError, UnicodeDecodeError):
            return "", ""
    return form.get("client_id", ""), form.get("client_secret", "")


def create_app(db_path: str | Path, *, client_id: str, client_secret: str,
               seed_demo: bool = False, token_ttl_seconds: float = 3600.0) -> FastAPI:
    """The simulator; ``client_id``/``client_secret`` are the one API client it knows."""
    clock = Clock()
    store = RepairsStore(db_path, clock)
    if seed_demo:
        store.seed_demo(demo_today())
    tokens = _Tokens(token_ttl_seconds)
    faults = FaultSwitch()
    app = FastAPI(title="Housing repairs back office simulator", docs_url=None, redoc_url=None)
    app.state.store, app.state.faults, app.state.clock = store, faults, clock
    app.state.tokens = tokens
    app.add_middleware(FaultInjector, faults=faults, prefixes=("/api", "/oauth"))
    app.include_router(admin_router(stats=store.stats, faults=faults, clock=clock,
                                    staff_change=store.staff_change))
    app.include_router(drift_router(change=store.drift_change, delete=store.drift_delete,
                                    add=store.drift_add))

    @app.exception_handler(RepairsError)
    async def refused(request: Request, exc: RepairsError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query")) or None,
                   "code": "invalid", "message": e["msg"]} for e in exc.errors()]
        return JSONResponse({"errors": errors}, status_code=422)

    @app.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        given = _client_credentials(request, form)
        if not (secrets.compare_digest(given[0], client_id)
                and secrets.compare_digest(given[1], client_secret)):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse({"access_token": tokens.issue(client_id), "token_type": "Bearer",
                             "expires_in": int(token_ttl_seconds)})

    @app.get(f"{API}/trades")
    def trades(client: Client) -> dict[str, Any]:
        return {"items": [{"code": c, "name": n, "active": True} for c, n in sample.TRADES.items()]}

    @app.post(f"{API}/jobs", status_code=201)
    def create_job(body: JobCreate, client: Client) -> dict[str, Any]:
        contact = body.contact.model_dump(exclude_none=True) if body.contact else None
        return store.create(client, NewJob(
            client_reference=body.client_reference, source_reference=body.source_reference,
            priority=body.priority, trade=body.trade, uprn=body.location.property_reference,
            room=body.location.room, detail=body.location.detail, description=body.description,
            access_notes=body.access_notes, contact=contact or None,
            slot_id=body.appointment.slot_id if body.appointment else None))

    @app.get(f"{API}/jobs")
    def list_jobs(client: Client, client_reference: str | None = None,
                  source_reference: str | None = None,
                  page_size: Annotated[int, Query(ge=1, le=100)] = 50,
                  page_token: Annotated[str | None, Query(pattern=r"^\d{1,12}$")] = None,
                  updated_since: datetime | None = None) -> dict[str, Any]:
        if updated_since is not None and updated_since.tzinfo is None:
            raise RepairsError(422, "invalid", "updated_since needs a UTC offset", "updated_since")
        items, more = store.jobs(client_reference=client_reference,
                                 source_reference=source_reference,
                                 after=int(page_token or 0), limit=page_size,
                                 updated_since=updated_since)
        following = None
        if more is not None:
            query = {k: v for k, v in {"client_reference": client_reference,
                                       "source_reference": source_reference,
                                       "updated_since": updated_since.isoformat()
                                       if updated_since else None}.items() if v}
            following = f"{API}/jobs?" + urlencode({**query, "page_size": page_size,
                                                    "page_token": more})
        return {"items": items, "links": {"next": following}}

    @app.get(f"{API}/jobs/{{job_id}}")
    def get_job(job_id: str, client: Client) -> dict[str, Any]:
        return store.job(job_id)

    @app.post(f"{API}/jobs/{{job_id}}/cancel")
    def cancel_job(job_id: str, client: Client, body: CancelBody | None = None) -> dict[str, Any]:
        return store.cancel(job_id, client, body.reason if body else None)

    @app.get(f"{API}/job-events")
    def job_events(client: Client, changed_after: datetime,
                   cursor: Annotated[str | None, Query(pattern=r"^c\d{1,12}$")] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
        if changed_after.tzinfo is None:
            raise RepairsError(422, "invalid", "changed_after needs a UTC offset", "changed_after")
        items, more = store.events(changed_after, int((cursor or "c0")[1:]), limit)
        return {"items": items, "next_cursor": f"c{more}" if more is not None else None}

    @app.get(f"{API}/appointment-slots")
    def slots(client: Client, property_reference: str, trade: str,
              from_: Annotated[date | None, Query(alias="from")] = None,
              to: date | None = None, page: Annotated[int, Query(ge=1)] = 1,
              page_size: Annotated[int, Query(ge=1, le=100)] = 50) -> dict[str, Any]:
        if trade not in sample.TRADES:
            raise RepairsError(422, "unknown_trade", "no such trade", "trade")
        if not store.known_property(property_reference):
            raise RepairsError(422, "unknown_property", "not a council-managed property",
                               "property_reference")
        first = from_ or clock.now().date()
        found = store.slots(trade, first, to or first + timedelta(days=sample.SLOT_DAYS))
        start = (page - 1) * page_size
        return {"items": found[start:start + page_size], "page": page, "page_size": page_size,
                "total_pages": max(1, math.ceil(len(found) / page_size))}

    @app.post("/admin/tokens/expire")
    def expire_tokens() -> dict[str, int]:
        return {"expired": tokens.expire()}

    @app.get("/admin/records/{job_id}")
    def record(job_id: str) -> dict[str, Any]:
        return store.detail(job_id)

    return app
