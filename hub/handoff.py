"""Hand-offs without a DAG run in between: the task that settles outcomes writes them back at once.

A dispatch (or status-sync) task delivers the CRM write-backs for its own system right after it
settled them, through the same outbox as ever (each message applied once by its idempotency key).
What it cannot deliver (the CRM is down or refuses the credentials) stays pending: the task then
emits ``hub://ledger/outbox`` so the ``crm_writeback`` DAG, which also runs on its timetable, takes
over. A write-back problem never fails the dispatch that caused it: the back-office change is done.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from connectors.base import Connector
from connectors.errors import PermanentError
from crm_adapter.rest import CrmClient
from hub import dispatch, outbox

log = logging.getLogger(__name__)


class WriteBackNow:
    """Delivers one system's pending write-backs with one CRM client, built on first use."""

    def __init__(self, system: str, client_factory: Callable[[], CrmClient], *,
                 url: str | None = None) -> None:
        self.system = system
        self.client_factory = client_factory
        self.url = url
        self.client: CrmClient | None = None
        self.sent = 0
        self.unavailable: str | None = None   # why write-back was left to the crm_writeback DAG
        self.hand_over = False   # a configuration problem: emit the outbox asset for it

    def __call__(self) -> int:
        """Deliver now; the number sent. Never raises: what is not sent stays in the outbox."""
        if self.unavailable is not None:
            return 0
        try:
            if self.client is None:
                self.client = self.client_factory()
            stats = outbox.deliver_pending(self.client, system=self.system, url=self.url,
                                           stop_on_transient=True)
        except PermanentError as exc:   # configuration: the write-back DAG fails visibly instead
            self.unavailable = f"PermanentError: {exc.message}"[:300]
            self.hand_over = True
            log.warning("%s: write-back left to the crm_writeback DAG (%s)", self.system,
                        self.unavailable)
            return 0
        except Exception as exc:   # type only: an exception text may quote a body
            self.unavailable = type(exc).__name__
            self.hand_over = True
            log.warning("%s: write-back left to the crm_writeback DAG (%s)", self.system,
                        self.unavailable)
            return 0
        self.sent += stats.sent
        if stats.retry:   # the CRM is not answering: do not hold up dispatch waiting on it
            self.unavailable = "TransientError: the CRM did not answer"
            log.warning("%s: the CRM did not answer; write-backs left to the outbox's retries "
                        "(crm_writeback)", self.system)
        return stats.sent

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


@dataclass
class DispatchReport:
    """What one dispatch task did: batches sent, outcomes, write-backs delivered and left."""
    batches: int = 0
    sent: dispatch.BatchStats = field(default_factory=dispatch.BatchStats)
    written_back: int = 0
    writebacks_waiting: int = 0
    writeback_unavailable: str | None = None
    hand_over: bool = False
    """Write-backs this task settled could not be delivered for a configuration reason (the CRM
    refused the credentials, or its Connection is missing): the task emits ``hub://ledger/outbox``
    so ``crm_writeback`` runs and fails visibly. A CRM that does not answer is not handed over:
    the outbox retries on its own backoff."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def dispatch_and_write_back(connector: Connector, system: str, *, batch_size: int,
                            max_batches: int, crm_client: Callable[[], CrmClient],
                            url: str | None = None, run_id: str | None = None) -> DispatchReport:
    """Send batches until nothing is ready (or ``max_batches``); after each batch, deliver the
    write-backs it settled. A PermanentError from the back office is raised after delivering."""
    report = DispatchReport()
    write_back = WriteBackNow(system, crm_client, url=url)
    try:
        for _ in range(max_batches):
            try:
                stats = dispatch.dispatch_batch(connector, system, batch_size=batch_size, url=url,
                                                run_id=run_id)
            except PermanentError:
                report.written_back += write_back()   # outcomes recorded before the error
                raise
            report.sent.add(stats)
            if stats.claimed == 0:
                break
            report.batches += 1
            if stats.confirmed or stats.rejected:
                report.written_back += write_back()
            if stats.claimed < batch_size:
                break
    finally:
        write_back.close()
    report.writeback_unavailable = write_back.unavailable
    report.writebacks_waiting = outbox.due_count(system=system, url=url)
    report.hand_over = write_back.hand_over and report.writebacks_waiting > 0
    return report


def write_back_after_sync(system: str, *, crm_client: Callable[[], CrmClient],
                          url: str | None = None) -> dict[str, Any]:
    """After a status sync: deliver the system's new write-backs now; report what is left."""
    write_back = WriteBackNow(system, crm_client, url=url)
    try:
        sent = write_back()
    finally:
        write_back.close()
    waiting = outbox.due_count(system=system, url=url)
    return {"written_back": sent, "writebacks_waiting": waiting,
            "writeback_unavailable": write_back.unavailable,
            "hand_over": write_back.hand_over and waiting > 0}
