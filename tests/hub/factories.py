"""Build ledger rows for hub tests through the hub's own intake functions."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from crm_adapter.models import CrmCase
from hub import intake
from hub.ledger import db


def coa_data(account: str = "CT00000001", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer": {"name": "Test Person", "email": "t.person@example.org", "phone": "01632 000000"},
        "account_reference": account, "moving_date": "2026-03-01",
        "new_address": {"line1": "1 Mill Lane", "line2": "", "town": "EXAMPLETON",
                        "postcode": "EX1 1AQ", "property_reference": "P000101"},
        "leaving_area": False}
    data.update(overrides)
    return data


def receive(url: str, crm_id: str, data: dict[str, Any], *, version: int = 1,
            case_type: str = "ctax_change_of_address") -> bool:
    case = CrmCase(crm_id=crm_id, version=version, case_type=case_type,
                   updated_at=datetime(2026, 3, 1, tzinfo=timezone.utc), data=data)
    return intake.record_case(case, source="pull", url=url)


def receive_and_map(url: str, count: int = 1, prefix: str = "CRM-T") -> None:
    for n in range(count):
        receive(url, f"{prefix}{n:04d}", coa_data(f"CT{n + 1:08d}"))
    intake.map_received(url=url)


def rows(url: str, model: type) -> list:
    """Every row of a ledger table, oldest first."""
    with db.session_scope(url) as session:
        return list(session.scalars(sa.select(model).order_by(model.id)))
