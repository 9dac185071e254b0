"""Coalesced signals to Airflow: "there is new work behind this asset".

The web app records a case (and maps it) first, then *marks* the assets that have new work. Marking
is a dictionary update under a lock: it never does I/O and never raises into the request. One
background thread per process publishes each marked asset at most once per ``interval``, however
many cases marked it meanwhile (many recorded cases, one signal), with at most one call in flight.

Transports:
- Redis pub/sub (``HUB_SIGNAL_REDIS_URL``): the Airflow way. Each asset has an ``AssetWatcher`` with
  the common-messaging ``MessageQueueTrigger`` on the channel ``channel_for(uri)``; the triggerer
  turns a message into an asset event, which starts the DAG scheduled on that asset.
- Airflow's REST API (``HUB_AIRFLOW_API_URL``), when Redis is not configured: see
  ``hub.airflow_events``.

Every DAG also runs on its timetable, so a lost signal costs only time. A publish that no watcher
heard (Redis answers "0 receivers": the triggerer is restarting its watcher) is retried for
``unheard_retry_seconds``; a transport error is retried with backoff. Logs name the asset and the
error type only: a signal never carries personal data.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from hub.orchestration_assets import channel_for, channel_prefix

log = logging.getLogger(__name__)


class Transport(Protocol):
    """Sends one signal for an asset; True when someone heard it, False when nobody listened."""

    name: str

    def send(self, uri: str, payload: dict[str, Any]) -> bool: ...

    def close(self) -> None: ...


@dataclass
class SignalStats:
    """Counters since start (no personal data): what the operations page and tests read."""

    marked: int = 0        # mark() calls, one per asset per recorded piece of work
    published: int = 0     # signals someone heard
    unheard: int = 0       # publishes nobody was listening to (retried)
    failed: int = 0        # transport errors (retried with backoff)
    dropped: int = 0       # given up after unheard_retry_seconds (the timetable covers it)
    last_error: str | None = None
    by_asset: dict[str, int] = field(default_factory=dict)   # published per asset


@dataclass
class _Target:
    dirty: bool = False
    marks: int = 0
    not_before: float = 0.0
    failures: int = 0
    unheard_since: float | None = None


class SignalPublisher:
    """Marks are coalesced per asset and published by one lazily started background thread."""

    def __init__(self, transport: Transport, *, interval: float = 0.5,
                 unheard_retry_seconds: float = 30.0, max_backoff: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.transport = transport
        self.interval = interval
        self.unheard_retry_seconds = unheard_retry_seconds
        self.max_backoff = max_backoff
        self.clock = clock
        self.stats = SignalStats()
        self._targets: dict[str, _Target] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._sending = 0
        self._healthy = True

    # --- the request path: no I/O, never raises -------------------------------------------------
    def mark(self, *uris: str) -> None:
        """Note new work behind each asset; published soon, coalesced with other marks."""
        try:
            with self._cond:
                if self._closing:
                    return
                for uri in uris:
                    target = self._targets.setdefault(uri, _Target())
                    target.dirty = True
                    target.marks += 1
                    self.stats.marked += 1
                self._start_locked()
                self._cond.notify()
        except Exception as exc:   # a signal is only a fast path; the timetable catches up
            log.warning("could not queue a signal (%s); the scheduled runs will pick the work up",
                        type(exc).__name__)

    def _start_locked(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="hub-signals", daemon=True)
            self._thread.start()

    # --- the background thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._wait_for_due_locked()
                if due is None:
                    return
                self._sending += 1
            try:
                for uri, marks in due:
                    self._send(uri, marks)
            finally:
                with self._cond:
                    self._sending -= 1
                    self._cond.notify_all()

    def _wait_for_due_locked(self) -> list[tuple[str, int]] | None:
        while True:
            now = self.clock()
            dirty = {uri: t for uri, t in self._targets.items() if t.dirty}
            due = [(uri, t) for uri, t in dirty.items() if t.not_before <= now]
            if due or (self._closing and not dirty):
                break
            if self._closing:   # closing: send what is left now, without waiting out intervals
                due = list(dirty.items())
                break
            wait = min((t.not_before - now for t in dirty.values()), default=None)
            self._cond.wait(timeout=wait)
        if not due:
            return None
        batch = []
        for uri, target in due:
            batch.append((uri, target.marks))
            target.dirty = False
            target.marks = 0
            target.not_before = now + self.interval
        return batch

    def _send(self, uri: str, marks: int) -> None:
        payload = {"asset": uri, "marks": marks,
                   "sent_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        try:
            heard = self.transport.send(uri, payload)
        except Exception as exc:   # type and asset only: never a body
            self._failed(uri, marks, exc)
            return
        with self._cond:
            target = self._targets[uri]
            if not self._healthy:
                self._healthy = True
                log.info("signals to Airflow work again (%s)", self.transport.name)
            target.failures = 0
            if heard:
                self.stats.published += 1
                self.stats.by_asset[uri] = self.stats.by_asset.get(uri, 0) + 1
                target.unheard_since = None
                return
            self.stats.unheard += 1
            now = self.clock()
            if target.unheard_since is None:
                target.unheard_since = now
            if now - target.unheard_since < self.unheard_retry_seconds and not self._closing:
                target.dirty = True
                target.marks += marks
                return
            target.unheard_since = None
            self.stats.dropped += 1
        log.info("no watcher heard the signal for %s for %.0f s; its DAG's timetable will run it",
                 uri, self.unheard_retry_seconds)

    def _failed(self, uri: str, marks: int, exc: Exception) -> None:
        with self._cond:
            target = self._targets[uri]
            target.failures += 1
            self.stats.failed += 1
            self.stats.last_error = type(exc).__name__
            first = self._healthy
            self._healthy = False
            if not self._closing:
                target.dirty = True
                target.marks += marks
                backoff = min(self.max_backoff, self.interval * 2 ** target.failures)
                target.not_before = self.clock() + backoff
        if first:
            log.warning("signal for %s not sent (%s via %s); retrying with backoff, and the "
                        "scheduled runs pick the work up meanwhile", uri, type(exc).__name__,
                        self.transport.name)

    # --- for shutdown, tests and the operations page ---------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is due or being sent (waits out intervals); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._sending or any(t.dirty for t in self._targets.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.05))
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Send what is marked (once, no retries), stop the thread and the transport."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        try:
            self.transport.close()
        except Exception as exc:
            log.debug("closing the signal transport failed (%s)", type(exc).__name__)

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            figures = asdict(self.stats)
            figures["waiting"] = sorted(u for u, t in self._targets.items() if t.dirty)
        return {"transport": self.transport.name, **figures}


class RedisTransport:
    """PUBLISH on the asset's channel; Redis answers how many subscribers (watchers) got it."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str | None = None, timeout: float = 2.0) -> None:
        import redis   # imported here: building the publisher does no I/O either way

        self.prefix = prefix or channel_prefix()
        self.client = redis.Redis.from_url(url, socket_timeout=timeout,
                                           socket_connect_timeout=timeout, health_check_interval=30)

    def send(self, uri: str, payload: dict[str, Any]) -> bool:
        return int(self.client.publish(channel_for(uri, self.prefix), json.dumps(payload))) > 0

    def close(self) -> None:
        self.client.close()


def publisher_from_env() -> SignalPublisher | None:
    """Redis when ``HUB_SIGNAL_REDIS_URL`` is set, else Airflow's REST API when
    ``HUB_AIRFLOW_API_URL`` is set, else None (the DAGs' timetables alone)."""
    interval = float(os.environ.get("HUB_SIGNAL_INTERVAL_SECONDS", "0.5"))
    redis_url = os.environ.get("HUB_SIGNAL_REDIS_URL")
    if redis_url:
        return SignalPublisher(RedisTransport(redis_url), interval=interval)
    from hub.airflow_events import rest_transport_from_env

    rest = rest_transport_from_env()
    if rest is None:
        return None
    # A REST event is always "heard": Airflow stored it. Space them out a little more.
    return SignalPublisher(rest, interval=max(interval, 1.0))


def redis_signal_env(redis_url: str, conn_id: str = "hub_redis") -> dict[str, str]:
    """The settings that make the web app publish to, and Airflow's asset watchers listen on, one
    Redis (for the web app's and every Airflow component's environment)."""
    return {"HUB_SIGNAL_REDIS_URL": redis_url, "HUB_SIGNAL_CONN_ID": conn_id,
            f"AIRFLOW_CONN_{conn_id.upper()}": redis_url}


def redis_answers(redis_url: str, timeout: float = 1.0) -> bool:
    """True when the Redis at ``redis_url`` answers PING (for start-up scripts choosing a transport)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
