"""Back up the ledger with pg_dump, lose the database, restore it with pg_restore: the hub finds
itself consistent, and after `hub restored` nothing is applied twice in the back office and no
write-back is lost in the CRM, even for the work done after the backup was taken.

This is the procedure of docs/deploying.md ("Backing up and restoring the ledger"), on the real
PostgreSQL server of this machine, with the client tools the Makefile installs.
"""
from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from connectors.base import Command, Outcome, OutcomeStatus
from crm_adapter.rest import CrmClient
from hub import cli, dispatch, intake, outbox
from hub.ledger import consistency, db, restore
from hub.ledger.models import Command as CommandRow
from hub.ledger.models import Case, OutboxMessage, WorkItem
from simulators.crm import create_app
from simulators.serving import serve_in_thread
from tests.hub.factories import coa_data, rows
from tests.hub.scripted import ScriptedConnector
from tests.support.databases import POSTGRES_ADMIN_URL, fresh_database

pytestmark = pytest.mark.postgres

SYSTEM = "revenues_northgate"
TOKEN = "backup-test-token"


class KeyedBackOffice(ScriptedConnector):
    """A back office that applies whatever it is sent (it does not de-duplicate by itself), behind
    a connector that looks the key up first when the hub says the command may have been sent: the
    worst case the hub must handle."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: Counter[str] = Counter()
        self.references: dict[str, str] = {}
        self.lookups = 0

    def apply(self, key: str) -> str:
        self.applied[key] += 1
        self.references[key] = f"RQ{len(self.references) + 1:06d}"
        return self.references[key]

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        self.submitted.extend(commands)
        outcomes = []
        for command in commands:
            if command.maybe_sent:
                self.lookups += 1
                if command.key in self.references:
                    outcomes.append(Outcome(command.key, OutcomeStatus.CONFIRMED,
                                            reference=self.references[command.key]))
                    continue
            outcomes.append(Outcome(command.key, OutcomeStatus.CONFIRMED,
                                    reference=self.apply(command.key)))
        return outcomes


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[tuple[CrmClient, httpx.Client]]:
    app = create_app(tmp_path / "crm.sqlite", token=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with serve_in_thread(app) as url, CrmClient(url, TOKEN, timeout=10) as client, \
            httpx.Client(base_url=url, headers=headers, timeout=10) as admin:
        yield client, admin
    app.state.store.close()


def libpq_url(url: str) -> str:
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (`make test` installs postgresql-client)")
    return path


def new_cases(admin: httpx.Client, first: int, count: int) -> None:
    for n in range(first, first + count):
        admin.put(f"/api/v1/cases/CRM-B{n:04d}", json={
            "case_type": "ctax_change_of_address",
            "data": coa_data(f"CT{n + 1:08d}")}).raise_for_status()


def intake_from(client: CrmClient, url: str) -> int:
    pulled = intake.pull_from_crm(client, url=url)
    intake.map_received(url=url)
    return pulled


def crm_outcomes(admin: httpx.Client, crm_ids: list[str]) -> dict[str, list[str]]:
    """The back-office references the CRM holds per case, from the write-backs it applied."""
    found = {}
    for crm_id in crm_ids:
        updates = admin.get(f"/api/v1/cases/{crm_id}/updates").raise_for_status().json()["updates"]
        found[crm_id] = [u.get("backoffice_reference") for u in updates if u.get("status")]
    return found


def test_dump_drop_restore_and_the_hub_carries_on_without_sending_twice(
        tmp_path: Path, crm: tuple[CrmClient, httpx.Client],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pg_dump, pg_restore = pg_tool("pg_dump"), pg_tool("pg_restore")
    client, admin = crm
    backoffice = KeyedBackOffice()
    dump = tmp_path / "ledger.dump"

    with fresh_database(POSTGRES_ADMIN_URL, "hub_backup_src") as source, \
            fresh_database(POSTGRES_ADMIN_URL, "hub_backup_dst") as target:
        # A working ledger: 6 cases, 4 sent and written back, 1 batch in flight, 1 pending.
        db.migrate(source)
        new_cases(admin, 0, 6)
        assert intake_from(client, source) == 6
        dispatch.dispatch_batch(backoffice, SYSTEM, batch_size=4, url=source)
        with db.session_scope(source) as session:
            _, [in_flight] = dispatch.claim_batch(session, SYSTEM, 1)
            in_flight_key = in_flight.key
        assert outbox.deliver_pending(client, url=source).sent == 4

        # The nightly backup, as docs/deploying.md gives it.
        subprocess.run([pg_dump, "--format=custom", "--no-owner", "--file", str(dump),
                        libpq_url(source)], check=True, capture_output=True, timeout=120)
        at_backup = consistency.check(source)
        assert at_backup.consistent, at_backup.findings
        outbox_ids_at_backup = max(m.id for m in rows(source, OutboxMessage))

        # After the backup (work the restore will forget): the in-flight batch reaches the back
        # office, the pending command is sent, 3 more cases come in and go through.
        backoffice.apply(in_flight_key)
        new_cases(admin, 6, 3)
        assert intake_from(client, source) == 3
        dispatch.dispatch_all(backoffice, SYSTEM, url=source)
        assert outbox.deliver_pending(client, url=source).sent == 4
        highest_outbox_id_used = max(m.id for m in rows(source, OutboxMessage))
        assert sum(backoffice.applied.values()) == 9 and set(backoffice.applied.values()) == {1}

        # The database is lost; the backup is restored into a new one.
        db.engine(source).dispose()
        with sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as conn:
            name = sa.engine.make_url(source).database
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        subprocess.run([pg_restore, "--no-owner", "--exit-on-error", "--dbname",
                        libpq_url(target), str(dump)], check=True, capture_output=True, timeout=120)

        # The hub finds itself consistent, at head, with every row the backup held.
        restored = consistency.check(target)
        assert restored.consistent, restored.findings
        assert restored.revision == restored.head
        assert restored.counts == at_backup.counts
        assert restored.counts["commands"] == 6 and restored.counts["outbox"] == 4
        monkeypatch.setenv("HUB_DATABASE_URL", target)
        assert cli.main(["check"]) == 0

        # Without `hub restored`, the two commands the back office applied after the backup
        # would go out again as first sends (and its next write-back ids are already used).
        unsure = [c for c in rows(target, CommandRow) if c.state in ("pending", "sending")]
        assert len(unsure) == 2 and not any(c.maybe_sent for c in unsure)

        stats = restore.after_restore(target, pull=lambda: intake_from(client, target))
        assert (stats.released, stats.pulled, stats.marked) == (1, 3, 5)
        assert stats.sequences["outbox"] > highest_outbox_id_used

        # The hub carries on: everything reaches the back office exactly once...
        sent = dispatch.dispatch_all(backoffice, SYSTEM, url=target)
        assert sent.confirmed == 5 and backoffice.lookups == 5
        commands = rows(target, CommandRow)
        assert {c.state for c in commands} == {"confirmed"} and len(commands) == 9
        assert backoffice.applied == Counter({c.key: 1 for c in commands})
        # ...and every case's outcome reaches the CRM: none taken for a repeat of another.
        delivered = outbox.deliver_pending(client, url=target)
        assert (delivered.sent, delivered.failed) == (5, 0)
        assert min(m.id for m in rows(target, OutboxMessage) if m.id > outbox_ids_at_backup) \
            > highest_outbox_id_used
        assert not [w for w in rows(target, WorkItem) if w.kind == "writeback_failed"]
        references = crm_outcomes(admin, [f"CRM-B{n:04d}" for n in range(9)])
        with db.session_scope(target) as session:
            by_case = session.execute(sa.select(CommandRow.reference, Case.crm_id).join(Case)).all()
        for reference, crm_id in by_case:
            assert reference in references[crm_id], crm_id
        final = consistency.check(target)
        assert final.consistent, final.findings
        db.engine(target).dispose()
