"""Put cases through the real pipeline for browser tests: CRM simulator -> intake -> Revenues."""
from __future__ import annotations

import httpx
import sqlalchemy as sa

from hub import dispatch, intake, outbox
from hub.ledger import db
from hub.ledger.models import Case, Command, WorkItem
from tests.browser.conftest import CRM_TOKEN, Stack
from tests.hub.factories import coa_data


def crm_case(stack: Stack, crm_id: str, data: dict, case_type: str = "ctax_change_of_address") -> None:
    httpx.put(f"{stack.crm_url}/api/v1/cases/{crm_id}", json={"case_type": case_type, "data": data,
                                                             "channel": "telephone"},
              headers={"Authorization": f"Bearer {CRM_TOKEN}"}, timeout=10).raise_for_status()


def intake_and_send(stack: Stack, connector=None) -> None:  # type: ignore[no-untyped-def]
    """What crm_intake and the revenues_northgate dispatch DAG do."""
    with stack.crm() as crm:
        intake.pull_from_crm(crm, url=stack.ledger)
    intake.map_received(url=stack.ledger)
    connector = connector or stack.revenues.connector()
    try:
        dispatch.dispatch_all(connector, "revenues_northgate", url=stack.ledger)
    finally:
        connector.close()


def write_back(stack: Stack) -> None:
    """What the crm_writeback DAG does."""
    with stack.crm() as crm:
        outbox.deliver_pending(crm, url=stack.ledger)


def refused_move(stack: Stack, crm_id: str, account: str = "CT99999901") -> int:
    """A change of address for an account Revenues does not know: refused, a work item opens."""
    crm_case(stack, crm_id, coa_data(account))
    intake_and_send(stack)
    return item_for(stack, crm_id)


def item_for(stack: Stack, crm_id: str) -> int:
    with db.session_scope(stack.ledger) as session:
        return session.scalar(sa.select(WorkItem.id).join(Case, Case.id == WorkItem.case_id)
                              .where(Case.crm_id == crm_id).order_by(WorkItem.id.desc()).limit(1))


def commands_of(stack: Stack, crm_id: str) -> list[Command]:
    with db.session_scope(stack.ledger) as session:
        return list(session.scalars(sa.select(Command).join(Case).where(Case.crm_id == crm_id)
                                    .order_by(Command.id)))


def crm_view(stack: Stack, crm_id: str) -> dict:
    return httpx.get(f"{stack.crm_url}/api/v1/cases/{crm_id}", timeout=10,
                     headers={"Authorization": f"Bearer {CRM_TOKEN}"}).raise_for_status().json()


def unreachable_revenues():  # type: ignore[no-untyped-def]
    """A Revenues connector whose server is down (every call a TransientError)."""
    from connectors.revenues.northgate import NorthgateConfig, NorthgateConnector
    from simulators.serving import free_port

    return NorthgateConnector(NorthgateConfig(
        endpoint=f"http://127.0.0.1:{free_port()}/soap", username="hub", password="pw",
        timeout_seconds=1, retry_attempts=1, retry_max_wait_seconds=0.1))
