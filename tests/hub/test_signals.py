"""The coalescing signal publisher: many marks make few signals, one thread, nothing raised into the
request path, failures counted and logged without personal data."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from hub.signals import SignalPublisher, publisher_from_env

REVENUES = "hub://ledger/commands/revenues_northgate"
WASTE = "hub://ledger/commands/waste_bartec"


class Recording:
    """A transport that records each send; ``heard`` and ``fail`` script its answers."""

    name = "recording"

    def __init__(self, *, delay: float = 0.0) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.threads: set[str] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.heard = True
        self.fail: Exception | None = None
        self.delay = delay
        self.closed = False
        self._lock = threading.Lock()

    def send(self, uri: str, payload: dict[str, Any]) -> bool:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.threads.add(threading.current_thread().name)
            time.sleep(self.delay)
            if self.fail is not None:
                raise self.fail
            self.sent.append((uri, payload))
            return self.heard
        finally:
            with self._lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.closed = True


def test_a_burst_of_marks_becomes_a_few_signals_per_asset() -> None:
    transport = Recording(delay=0.01)
    publisher = SignalPublisher(transport, interval=0.2)
    marking = [threading.Thread(target=lambda: [publisher.mark(REVENUES) for _ in range(250)])
               for _ in range(4)]
    started = time.monotonic()
    for thread in marking:
        thread.start()
    for thread in marking:
        thread.join()
    publisher.mark(WASTE)
    assert publisher.flush(timeout=5)
    elapsed = time.monotonic() - started
    revenues = [p for uri, p in transport.sent if uri == REVENUES]
    # at most one signal per interval per asset, and the last mark is always followed by a signal
    assert 1 <= len(revenues) <= 2 + elapsed / 0.2
    assert sum(p["marks"] for p in revenues) == 1000
    assert [uri for uri, _ in transport.sent].count(WASTE) == 1
    assert transport.threads == {"hub-signals"} and transport.most_in_flight == 1
    assert publisher.stats.marked == 1001 and publisher.stats.published == len(transport.sent)
    publisher.close()


def test_marks_made_while_a_signal_is_in_flight_get_one_more_signal() -> None:
    transport = Recording(delay=0.3)
    publisher = SignalPublisher(transport, interval=0.05)
    publisher.mark(REVENUES)
    time.sleep(0.1)                    # the first signal is being sent
    for _ in range(50):
        publisher.mark(REVENUES)       # work recorded after it was sent must not be left behind
    assert publisher.flush(timeout=5)
    assert [p["marks"] for _, p in transport.sent] == [1, 50]
    publisher.close()


def test_marking_never_waits_for_a_slow_transport() -> None:
    publisher = SignalPublisher(Recording(delay=1.0), interval=0.0)
    publisher.mark(REVENUES)
    started = time.monotonic()
    for _ in range(1000):
        publisher.mark(REVENUES, WASTE)
    assert time.monotonic() - started < 0.5
    publisher.close(timeout=0.1)


def test_a_lost_redis_raises_nothing_into_the_request_path_and_is_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    transport = Recording()
    transport.fail = ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    publisher = SignalPublisher(transport, interval=0.02, max_backoff=0.05)
    caplog.set_level(logging.INFO, logger="hub.signals")
    for _ in range(100):
        publisher.mark(REVENUES)       # raises nothing
    time.sleep(0.4)
    assert publisher.stats.failed >= 2 and publisher.stats.published == 0
    assert publisher.stats.last_error == "ConnectionError"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one warning when signals start failing, not one per retry"
    assert "ConnectionError" in warnings[0].getMessage() and REVENUES in warnings[0].getMessage()
    assert "6379" not in caplog.text, "the exception text is not logged"
    transport.fail = None              # Redis is back: the waiting signal goes, with every mark
    assert publisher.flush(timeout=5)
    assert [(uri, p["marks"]) for uri, p in transport.sent] == [(REVENUES, 100)]
    assert "work again" in caplog.text
    publisher.close()


def test_failures_back_off_instead_of_hammering_the_transport() -> None:
    transport = Recording()
    transport.fail = TimeoutError()
    publisher = SignalPublisher(transport, interval=0.01, max_backoff=0.16)
    publisher.mark(REVENUES)
    time.sleep(0.6)
    # 0.02 + 0.04 + 0.08 + 0.16 + 0.16 ...: about 6 tries in 0.6 s, not 60
    assert 3 <= publisher.stats.failed <= 8
    publisher.close(timeout=0.1)


def test_a_signal_nobody_heard_is_retried_then_dropped() -> None:
    transport = Recording()
    transport.heard = False            # no watcher subscribed (triggerer restarting it)
    publisher = SignalPublisher(transport, interval=0.02, unheard_retry_seconds=0.2)
    publisher.mark(REVENUES)
    time.sleep(0.5)
    assert publisher.stats.unheard >= 3 and publisher.stats.dropped == 1
    assert not publisher.snapshot()["waiting"], "given up: the DAG's timetable covers it"
    transport.heard = True
    publisher.mark(REVENUES)
    assert publisher.flush(timeout=5) and publisher.stats.published == 1
    publisher.close()


def test_an_unheard_signal_is_heard_once_the_watcher_is_back() -> None:
    transport = Recording()
    transport.heard = False
    publisher = SignalPublisher(transport, interval=0.02, unheard_retry_seconds=5)
    publisher.mark(REVENUES)
    time.sleep(0.1)
    transport.heard = True
    assert publisher.flush(timeout=5)
    assert publisher.stats.published == 1 and publisher.stats.dropped == 0
    publisher.close()


def test_close_sends_what_is_marked_and_stops_the_thread() -> None:
    transport = Recording()
    publisher = SignalPublisher(transport, interval=60)
    publisher.mark(REVENUES)
    assert publisher.flush(timeout=5)
    publisher.mark(REVENUES)           # due only in 60 s
    publisher.close(timeout=5)
    assert len(transport.sent) == 2 and transport.closed
    thread = publisher._thread
    assert thread is not None and not thread.is_alive()
    publisher.mark(REVENUES)           # after close: ignored, no new thread
    assert publisher._thread is thread and len(transport.sent) == 2


def test_no_thread_until_something_is_marked() -> None:
    publisher = SignalPublisher(Recording())
    assert publisher._thread is None
    publisher.mark(REVENUES)
    assert publisher._thread is not None and publisher._thread.name == "hub-signals"
    publisher.close()


def test_configuration_picks_redis_then_rest_then_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HUB_SIGNAL_REDIS_URL", "HUB_AIRFLOW_API_URL"):
        monkeypatch.delenv(name, raising=False)
    assert publisher_from_env() is None
    monkeypatch.setenv("HUB_AIRFLOW_API_URL", "http://127.0.0.1:1")
    rest = publisher_from_env()
    assert rest is not None and rest.transport.name == "airflow-rest"
    monkeypatch.setenv("HUB_SIGNAL_REDIS_URL", "redis://127.0.0.1:1/0")
    redis = publisher_from_env()   # building it connects to nothing
    assert redis is not None and redis.transport.name == "redis"
    for publisher in (rest, redis):
        publisher.close()


def test_one_redis_setting_serves_both_sides() -> None:
    from hub.signals import redis_answers, redis_signal_env

    env = redis_signal_env("redis://cache:6379/2")
    assert env == {"HUB_SIGNAL_REDIS_URL": "redis://cache:6379/2", "HUB_SIGNAL_CONN_ID": "hub_redis",
                   "AIRFLOW_CONN_HUB_REDIS": "redis://cache:6379/2"}
    assert redis_answers("redis://127.0.0.1:1/0", timeout=0.2) is False
