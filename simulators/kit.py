"""A neutral kit for back-office simulators served over HTTP by FastAPI (REST or SOAP alike).

Every simulator built on the kit answers the same admin API, so tests
(``tests/support/harness.py``) and the demo (``demo/systems.py``) drive any of them the same way:

=====================================================  ===============================================
``GET  /admin/stats``                                  ``{"effects": n, ...}``: changes the back office
                                                       has applied (from its own state)
``POST /admin/faults``                                 ``{"count", "mode", "delay_seconds"?,
                                                       "retry_after"?}``: fail the next calls
``DELETE /admin/faults``                               disarm every armed fault
``GET  /admin/clock``, ``POST /admin/clock``           the back office's clock; ``{"offset_seconds"}``
                                                       moves it (for due dates and time zones)
``POST /admin/records/{reference}/status``             ``{"status", "note"?}``: a back-office officer
                                                       changes a record (what status sync must find)
=====================================================  ===============================================

and, for reconciliation (``drift_router``; REST and SOAP simulators alike), drift on purpose:
changes made behind the hub's back that no change feed reports:

=====================================================  ===============================================
``POST /admin/drift/records/{reference}``              ``{"status"?, "fields"?: {vendor name: value}}``:
                                                       change a record's status or values silently
``DELETE /admin/drift/records/{reference}``            delete a record
``POST /admin/drift/records``                          ``{"key", "like", "status"?}``: add a record
                                                       carrying the hub key ``key``, copied from
                                                       record ``like``; answers its ``reference``
=====================================================  ===============================================

Parts: ``Clock`` (UTC, microseconds, strictly increasing), ``FaultSwitch`` (armed faults, one per
call), ``FaultInjector`` (ASGI middleware applying them to HTTP APIs), ``admin_router``,
``SqliteState`` (state that survives a restart, one lock, immediate transactions),
``simulator_parser`` and ``run`` for ``__main__``, and ``serve_in_thread`` for tests.

The kit knows nothing of the product: simulators never import connectors, transports or the CRM
adapter (they implement the vendor's documented format on their own).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulators.serving import free_port, serve_in_thread

__all__ = ["Clock", "Fault", "FaultSwitch", "FaultInjector", "HTTP_FAULT_MODES", "SqliteState",
           "locked", "admin_router", "drift_router", "fault_router", "simulator_parser", "run", "serve_in_thread", "free_port"]

HTTP_FAULT_MODES = ("http_503", "http_500", "http_429", "timeout")
"""``http_<status>``: answer that status instead of handling the call (nothing applied).
``timeout``: the call IS applied, then the answer is held back past the client's timeout, so the
client cannot know the outcome."""


class Clock:
    """The back office's clock: UTC, microsecond precision, every reading later than the one
    before (so two changes never share a time and a strict "since" never skips one), with an
    offset that tests may move."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._last: datetime | None = None

    def now(self) -> datetime:
        with self._lock:
            moment = datetime.now(timezone.utc) + self._offset
            if self._last is not None and moment <= self._last:
                moment = self._last + timedelta(microseconds=1)
            self._last = moment
            return moment

    def stamp(self) -> str:
        """``now()`` as RFC 3339 text with microseconds and an offset (``+00:00``)."""
        return self.now().isoformat(timespec="microseconds")

    def set_offset(self, seconds: float) -> None:
        with self._lock:
            self._offset = timedelta(seconds=seconds)

    @property
    def offset_seconds(self) -> float:
        return self._offset.total_seconds()


class Fault(NamedTuple):
    """One armed fault (indexable as ``(mode, delay_seconds)`` like ``simulators.soap``'s)."""

    mode: str
    delay_seconds: float
    retry_after: float | None = None


class FaultSwitch:
    """Transient faults armed by tests or the demo, consumed one per call, in order."""

    def __init__(self, modes: Sequence[str] = HTTP_FAULT_MODES,
                 default_delay_seconds: float = 3.0) -> None:
        self.modes = tuple(modes)
        self.default_delay_seconds = default_delay_seconds
        self._lock = threading.Lock()
        self._armed: list[Fault] = []

    def arm(self, n: int, mode: str | None = None, delay_seconds: float | None = None,
            retry_after: float | None = None) -> None:
        """Fail the next ``n`` calls in ``mode`` (the first of ``modes`` by default)."""
        mode = mode or self.modes[0]
        if mode not in self.modes:
            raise ValueError(f"unknown fault mode {mode!r}; known: {list(self.modes)}")
        delay = self.default_delay_seconds if delay_seconds is None else delay_seconds
        with self._lock:
            self._armed.extend([Fault(mode, delay, retry_after)] * max(0, n))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def take(self) -> Fault | None:
        """The fault for this call, or None."""
        with self._lock:
            return self._armed.pop(0) if self._armed else None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._armed)


class FaultInjector:
    """ASGI middleware: applies ``faults`` to HTTP calls under ``prefixes`` (never ``/admin``).

    ``app.add_middleware(FaultInjector, faults=switch, prefixes=("/api", "/oauth"))``.
    ``http_<status>`` answers ``{"error": {"code": "unavailable"}}`` with that status (and
    ``Retry-After`` when armed with one); ``timeout`` runs the call, then holds the answer back
    until the client gives up or ``delay_seconds`` pass.
    """

    def __init__(self, app: ASGIApp, *, faults: FaultSwitch, prefixes: Sequence[str] = ("/",)) -> None:
        self.app = app
        self.faults = faults
        self.prefixes = tuple(prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path or path.startswith("/admin") or not path.startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        fault = self.faults.take()
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.mode == "timeout":
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, hold)
            await _until_disconnected(receive, fault.delay_seconds)
            for message in held:   # uvicorn drops these when the client has gone
                await send(message)
        else:
            status = int(fault.mode.removeprefix("http_"))
            headers = ({"Retry-After": str(int(fault.retry_after))}
                       if fault.retry_after is not None else {})
            response = JSONResponse({"error": {"code": "unavailable",
                                               "message": "service temporarily unavailable"}},
                                    status_code=status, headers=headers)
            await response(scope, receive, send)


async def _until_disconnected(receive: Receive, seconds: float) -> None:
    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(wait(), timeout=seconds)
    except (asyncio.TimeoutError, RuntimeError):
        return


class SqliteState:
    """A simulator's state in one SQLite file, shared by the server's threads under one lock
    (``self.lock``, re-entrant); ``transaction()`` is BEGIN IMMEDIATE ... COMMIT or ROLLBACK."""

    def __init__(self, db_path: str | Path, schema: str) -> None:
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(schema)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.db.close()


F = TypeVar("F", bound=Callable[..., Any])


def locked(method: F) -> F:
    """Run a ``SqliteState`` method under its lock (reads too: one connection, many threads)."""
    @functools.wraps(method)
    def run(self: SqliteState, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)
    return run  # type: ignore[return-value]


# -- admin API ---------------------------------------------------------------------------------

class FaultRequest(BaseModel):
    count: int = Field(ge=0, le=1000)
    mode: str | None = Field(default=None, max_length=40)
    delay_seconds: float | None = Field(default=None, ge=0, le=120)
    retry_after: float | None = Field(default=None, ge=0, le=3600)


class ClockRequest(BaseModel):
    offset_seconds: float = Field(ge=-366 * 86400, le=366 * 86400)


class StaffChange(BaseModel):
    status: str = Field(min_length=1, max_length=40)
    note: str | None = Field(default=None, max_length=2000)


StaffChangeHandler = Callable[[str, str, str | None], Mapping[str, Any]]
"""``(reference, status, note) -> record``; raise ``LookupError`` (404) or ``ValueError`` (422)."""


def fault_router(faults: FaultSwitch, prefix: str = "/admin") -> APIRouter:
    """``POST {prefix}/faults`` (``FaultRequest``: arm) and ``DELETE {prefix}/faults`` (disarm),
    each answering ``{"pending": n}``; an unknown mode is a 422."""
    router = APIRouter(prefix=prefix, tags=["admin"])

    @router.post("/faults")
    def arm_faults(body: FaultRequest) -> dict[str, Any]:
        try:
            faults.arm(body.count, body.mode, body.delay_seconds, body.retry_after)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"pending": faults.pending}

    @router.delete("/faults")
    def clear_faults() -> dict[str, Any]:
        faults.clear()
        return {"pending": 0}

    return router


def admin_router(*, stats: Callable[[], Mapping[str, Any]], faults: FaultSwitch | None = None,
                 clock: Clock | None = None,
                 staff_change: StaffChangeHandler | None = None) -> APIRouter:
    """The kit's admin endpoints (see the module docstring) for one simulator."""
    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.get("/stats")
    def get_stats() -> dict[str, Any]:
        return dict(stats())

    if faults is not None:
        router.include_router(fault_router(faults, prefix=""))

    if clock is not None:
        @router.get("/clock")
        def get_clock() -> dict[str, Any]:
            return {"now": clock.stamp(), "offset_seconds": clock.offset_seconds}

        @router.post("/clock")
        def set_clock(body: ClockRequest) -> dict[str, Any]:
            clock.set_offset(body.offset_seconds)
            return {"now": clock.stamp(), "offset_seconds": clock.offset_seconds}

    if staff_change is not None:
        @router.post("/records/{reference}/status")
        def change(reference: str, body: StaffChange) -> dict[str, Any]:
            try:
                return dict(staff_change(reference, body.status, body.note))
            except LookupError as exc:
                raise HTTPException(404, "record not found") from exc
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc

    return router


class DriftChange(BaseModel):
    status: str | None = Field(default=None, min_length=1, max_length=40)
    fields: dict[str, str | int | None] = Field(default_factory=dict, max_length=20)


class DriftAdd(BaseModel):
    key: str = Field(min_length=1, max_length=200)
    like: str = Field(min_length=1, max_length=120)
    status: str | None = Field(default=None, min_length=1, max_length=40)


def drift_router(*, change: Callable[[str, str | None, Mapping[str, Any]], Mapping[str, Any]],
                 delete: Callable[[str], Mapping[str, Any]],
                 add: Callable[[str, str, str | None], Mapping[str, Any]]) -> APIRouter:
    """``/admin/drift/...`` (module docstring): the simulator's own functions change, delete and
    add records behind the hub's back. They raise ``LookupError`` for an unknown record (404)
    and ``ValueError`` for a field or value they cannot take (422)."""
    router = APIRouter(prefix="/admin/drift", tags=["admin"])

    def answer(call: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        try:
            return dict(call())
        except LookupError as exc:
            raise HTTPException(404, "record not found") from exc
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc

    @router.post("/records/{reference}")
    def drift_change(reference: str, body: DriftChange) -> dict[str, Any]:
        if body.status is None and not body.fields:
            raise HTTPException(422, "nothing to change: give status or fields")
        return answer(lambda: change(reference, body.status, body.fields))

    @router.delete("/records/{reference}")
    def drift_delete(reference: str) -> dict[str, Any]:
        return answer(lambda: delete(reference))

    @router.post("/records")
    def drift_add(body: DriftAdd) -> dict[str, Any]:
        return answer(lambda: add(body.key, body.like, body.status))

    return router


# -- running -----------------------------------------------------------------------------------

def simulator_parser(prog: str, description: str | None, *, default_port: int,
                     default_db: str) -> argparse.ArgumentParser:
    """``--host``, ``--port``, ``--db`` and ``--seed-demo``: what every simulator's
    ``__main__`` takes (add its credentials on top)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--db", default=default_db, help="SQLite file for the simulator's state")
    parser.add_argument("--seed-demo", action="store_true", help="load the demo's sample data")
    return parser


def secret_argument(parser: argparse.ArgumentParser, flag: str, env: str, args: argparse.Namespace
                    ) -> str:
    """A secret from ``args`` or the environment variable ``env`` (never a default)."""
    value = getattr(args, flag.lstrip("-").replace("-", "_")) or os.environ.get(env)
    if not value:
        parser.error(f"{flag} or {env} is required")
    return value


def run(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` in this process. No access log: URLs may carry search values."""
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
