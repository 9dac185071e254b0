"""Work items for desk tests, made the way the hub makes them (intake, mapping, outcomes)."""
from __future__ import annotations

import sqlalchemy as sa

from hub import outcomes
from hub.ledger import db
from hub.ledger.models import Command, WorkItem
from tests.hub.factories import coa_data, receive_and_map  # noqa: F401
from tests.hub.factories import receive


def refused_move(url: str, crm_id: str = "CRM-R1", account: str = "CT99999901",
                 reason: str = "Client fault: account not found") -> int:
    """A Council Tax move refused by Revenues: one work item for the revenues team."""
    from hub import intake

    receive(url, crm_id, coa_data(account))
    intake.map_received(url=url)
    with db.session_scope(url) as session:
        command = session.scalar(sa.select(Command).join(Command.case).where(
            Command.case.has(crm_id=crm_id)))
        command.state = "sending"
        outcomes.reject(session, command, reason=reason)
        session.flush()
        return session.scalar(sa.select(WorkItem.id).where(WorkItem.command_id == command.id))


def waste_item(url: str, crm_id: str = "CRM-W1") -> int:
    """A work item for the waste team (a refused missed-bin report)."""
    from hub import workitems

    receive(url, crm_id, {"x": 1}, case_type="waste_missed_bin")
    with db.session_scope(url) as session:
        from hub.ledger.models import Case

        case = session.scalar(sa.select(Case).where(Case.crm_id == crm_id))
        item = workitems.open_work_item(session, dedupe_key=f"test:{crm_id}", kind="backoffice_rejected",
                                        system="waste_bartec", case_id=case.id,
                                        reason=f"Waste refused the report for CRM case {crm_id}")
        return item.id
