"""On the machine's real Redis: a signal the web app publishes reaches the asset's watcher, the
common-messaging MessageQueueTrigger the DAG files build, run in-process; only that asset's watcher
wakes; and a Redis that is not there costs the request path nothing. Own channel names per run."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from hub.orchestration_assets import channel_for, commands_uri
from hub.signals import RedisTransport, SignalPublisher

REDIS_URL = "redis://127.0.0.1:6379/0"
REVENUES = commands_uri("revenues_northgate")
WASTE = commands_uri("waste_bartec")


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _redis_answers(), reason="Redis does not answer on 127.0.0.1:6379")


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The DAG side's settings with a channel prefix and Connection of this test's own."""
    prefix = f"hubtest{uuid.uuid4().hex[:10]}"
    conn_id = f"hub_redis_{prefix}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", REDIS_URL)
    monkeypatch.setenv("HUB_SIGNAL_CONN_ID", conn_id)
    monkeypatch.setenv("HUB_SIGNAL_CHANNEL_PREFIX", prefix)
    monkeypatch.setenv("HUB_SIGNAL_POLL_SECONDS", "0.05")
    yield prefix


def _watcher_trigger(uri: str) -> Any:
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    from hub.orchestration import hub_asset

    [watcher] = hub_asset(uri).watchers
    assert isinstance(watcher.trigger, MessageQueueTrigger)
    return watcher.trigger


async def _first_event(trigger: Any, timeout: float,
                       listen_until: asyncio.Event | None = None) -> Any:
    """The trigger's first event; with ``listen_until``, stay subscribed until it is set."""
    run = trigger.run()
    try:
        event = await asyncio.wait_for(run.__anext__(), timeout)
        if listen_until is not None:
            await asyncio.wait_for(listen_until.wait(), timeout)
        return event
    finally:
        await run.aclose()


def test_a_published_signal_reaches_the_assets_watcher(watched: str) -> None:
    trigger = _watcher_trigger(REVENUES)
    publisher = SignalPublisher(RedisTransport(REDIS_URL, prefix=watched), interval=0.05)

    async def scenario() -> tuple[Any, bool]:
        flushed = asyncio.Event()
        waiting = asyncio.ensure_future(_first_event(trigger, timeout=20, listen_until=flushed))
        await asyncio.sleep(0.2)
        for _ in range(25):   # a burst of recorded cases: coalesced, retried until heard
            publisher.mark(REVENUES)
        # The watcher stays subscribed until every mark is sent: a mark that lands after the first
        # send is published again, and must be heard, not left for the timetable.
        done = await asyncio.to_thread(publisher.flush, 10)
        flushed.set()
        return await waiting, done

    event, flushed = asyncio.run(scenario())
    assert flushed
    publisher.close()
    assert event.payload["channel"] == channel_for(REVENUES, watched)
    data = json.loads(event.payload["data"])
    assert data["asset"] == REVENUES and 1 <= data["marks"] <= 25
    assert publisher.stats.published >= 1 and publisher.stats.failed == 0


def test_a_signal_for_one_system_wakes_only_that_systems_watcher(watched: str) -> None:
    revenues, waste = _watcher_trigger(REVENUES), _watcher_trigger(WASTE)
    publisher = SignalPublisher(RedisTransport(REDIS_URL, prefix=watched), interval=0.05)

    async def scenario() -> tuple[Any, Any]:
        woken = asyncio.ensure_future(_first_event(revenues, timeout=20))
        asleep = asyncio.ensure_future(_first_event(waste, timeout=3))
        await asyncio.sleep(0.2)
        publisher.mark(REVENUES)
        return await asyncio.gather(woken, asleep, return_exceptions=True)

    woken, asleep = asyncio.run(scenario())
    publisher.close()
    assert woken.payload["channel"] == channel_for(REVENUES, watched)
    assert isinstance(asleep, (TimeoutError, asyncio.TimeoutError)), "waste heard nothing"


def test_with_redis_gone_the_request_path_is_not_held_up() -> None:
    with socket.socket() as sock:   # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    publisher = SignalPublisher(RedisTransport(f"redis://127.0.0.1:{port}/0", timeout=0.5),
                                interval=0.05, max_backoff=0.2)
    marked = threading.Event()

    def request_path() -> None:
        for _ in range(200):
            publisher.mark(REVENUES)
        marked.set()

    threading.Thread(target=request_path).start()
    assert marked.wait(1), "marking does not wait for Redis"
    assert not publisher.flush(timeout=1.0), "the signal waits to be retried"
    assert publisher.stats.failed >= 1 and publisher.stats.last_error == "ConnectionError"
    publisher.close(timeout=2)
