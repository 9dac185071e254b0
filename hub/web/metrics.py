"""``/metrics``: the operations figures in Prometheus's text format (prometheus-client).

Computed from the ledger at each scrape by a custom collector, so every web worker answers the same.
Scrape with the ``HUB_API_TOKEN`` bearer (Prometheus ``authorization`` with ``credentials``), or open
it signed in as operations staff.
"""
from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from hub import monitoring
from hub.ledger.db import session_scope
from hub.ledger.models import OPEN_WORK_ITEM_STATES, WorkItem
from hub.web.auth import ledger_url, operations_or_token

router = APIRouter()


class LedgerCollector(Collector):
    """Yields the ``hub_*`` metrics from one read of the ledger."""

    def __init__(self, url: str | None) -> None:
        self.url = url

    def collect(self) -> Iterator[Metric]:
        with session_scope(self.url) as session:
            f = monitoring.collect(session)
            teams = session.execute(select(WorkItem.team, func.count()).where(
                WorkItem.state.in_(OPEN_WORK_ITEM_STATES)).group_by(WorkItem.team)).all()
        commands = GaugeMetricFamily("hub_commands", "Commands by system and state (backlog)",
                                     labels=["system", "state"])
        oldest = GaugeMetricFamily("hub_oldest_pending_seconds", "Age of the oldest pending command",
                                   labels=["system"])
        last_hour = GaugeMetricFamily("hub_confirmed_last_hour", "Commands confirmed in the last hour",
                                      labels=["system"])
        throughput = GaugeMetricFamily("hub_throughput_per_hour",
                                       "Commands confirmed per hour, 24-hour average", labels=["system"])
        attempts = GaugeMetricFamily("hub_attempts_24h", "Send attempts in the last 24 hours",
                                     labels=["system"])
        failed = GaugeMetricFamily("hub_failed_attempts_24h",
                                   "Send attempts in the last 24 hours that did not succeed",
                                   labels=["system"])
        rate = GaugeMetricFamily("hub_failure_rate", "Failed share of attempts, last 24 hours",
                                 labels=["system"])
        latency = GaugeMetricFamily("hub_crm_to_confirmed_seconds",
                                    "CRM receipt to back-office confirmation, last 7 days",
                                    labels=["system", "quantile"])
        for name, s in f.systems.items():
            for state in ("pending", "sending", "awaiting", "failed"):
                commands.add_metric([name, state], getattr(s, state))
            oldest.add_metric([name], s.oldest_pending_seconds or 0.0)
            last_hour.add_metric([name], s.confirmed_last_hour)
            throughput.add_metric([name], s.throughput_per_hour_24h)
            attempts.add_metric([name], s.attempts_24h)
            failed.add_metric([name], s.failed_attempts_24h)
            if s.failure_rate is not None:
                rate.add_metric([name], s.failure_rate)
            if s.latency_p50_seconds is not None:
                latency.add_metric([name, "0.5"], s.latency_p50_seconds)
                latency.add_metric([name, "0.95"], s.latency_p95_seconds or 0.0)
        by_class = GaugeMetricFamily("hub_failures_24h", "Failed attempts by error class, last 24 hours",
                                     labels=["system", "error_class"])
        for g in f.failures:
            by_class.add_metric([g.system, g.error_class], g.count)
        outbox = GaugeMetricFamily("hub_writeback_messages", "CRM write-backs not delivered",
                                   labels=["state"])
        outbox.add_metric(["pending"], f.writeback_pending)
        outbox.add_metric(["failed"], f.writeback_failed)
        items = GaugeMetricFamily("hub_open_work_items", "Open work items by team", labels=["team"])
        for team, count in teams:
            items.add_metric([team], count)
        yield from (commands, oldest, last_hour, throughput, attempts, failed, rate, latency,
                    by_class, outbox, items)


@router.get("/metrics", name="metrics", dependencies=[Depends(operations_or_token)])
def metrics(request: Request) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(ledger_url(request)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
