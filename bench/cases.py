"""Mixed CRM cases for the bench: the demo's case mix (every domain, a few refused or invalid), each
copy under its own CRM id, with the values a back office would refuse to see twice made unique."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

from crm_adapter.models import CrmCase
from simulators import world

UPDATED_AT = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def mixed_cases(n: int, *, prefix: str = "BENCH") -> list[CrmCase]:
    """``n`` cases cycling through the demo mix (``simulators.world.demo_cases``: every domain,
    in the demo's proportions), deterministic for a given ``n``."""
    templates = _interleaved(world.demo_cases())
    cases = []
    for i in range(n):
        template = templates[i % len(templates)]
        data = copy.deepcopy(template["data"])
        payment = data.get("payment")
        if isinstance(payment, dict) and payment.get("reference"):
            # a payment pays for one application: unique per case (and per prefix)
            payment["reference"] = f"PAY-{prefix}-{i:07d}"[:40]
        cases.append(CrmCase(crm_id=f"{prefix}-{i:06d}", version=1,
                             case_type=template["case_type"], updated_at=UPDATED_AT, data=data))
    return cases


def _interleaved(templates: list[dict]) -> list[dict]:
    """The demo cases reordered so that case types alternate (any prefix of the mix is mixed)."""
    by_type: dict[str, list[dict]] = {}
    for template in templates:
        by_type.setdefault(template["case_type"], []).append(template)
    queues = list(by_type.values())
    total = len(templates)
    ordered: list[dict] = []
    taken = [0] * len(queues)
    for _ in range(total):
        # the type furthest behind its share of the mix goes next
        index = min(range(len(queues)), key=lambda i: (taken[i] + 1) / len(queues[i])
                    if taken[i] < len(queues[i]) else 2.0)
        ordered.append(queues[index][taken[index]])
        taken[index] += 1
    return ordered
