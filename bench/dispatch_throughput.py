"""Dispatch throughput: cases recorded + mapped + sent + settled per second.

    .venv/bin/python bench/dispatch_throughput.py [--cases 500] [--runs 3] [--ledger sqlite|postgresql]
                                                  [--connector scripted|revenues]

``scripted`` measures the hub's own cost (ledger, mapping, outbox) with a connector that answers at
once; ``revenues`` sends through the Revenues connector to its SOAP simulator over a real socket.
Prints each run and the median. Nothing here is a test: it only reports figures.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.base import Outcome, OutcomeStatus  # noqa: E402
from crm_adapter.models import CrmCase  # noqa: E402
from hub import dispatch, intake  # noqa: E402
from hub.ledger import db  # noqa: E402


def cases(n: int) -> list[CrmCase]:
    now = datetime.now(timezone.utc)
    return [CrmCase(crm_id=f"BENCH-{i:06d}", version=1, case_type="ctax_single_person_discount",
                    updated_at=now, data={"customer": {"name": "Bench Person"},
                                          "account_reference": f"CT{1 + i % 40:08d}",
                                          "from_date": "2026-04-01", "adults_in_household": 1})
            for i in range(n)]


def one_run(n: int, ledger: str, connector_kind: str) -> dict[str, float]:
    from tests.hub.scripted import ScriptedConnector
    from tests.support.databases import POSTGRES_ADMIN_URL, fresh_database

    with tempfile.TemporaryDirectory() as tmp:
        import contextlib

        with contextlib.ExitStack() as stack:
            url = (f"sqlite:///{tmp}/ledger.db" if ledger == "sqlite"
                   else stack.enter_context(fresh_database(POSTGRES_ADMIN_URL, "hub_bench")))
            db.migrate(url)
            if connector_kind == "scripted":
                connector = ScriptedConnector(lambda c: Outcome(c.key, OutcomeStatus.CONFIRMED, reference="R1"))
            else:
                from connectors.revenues.northgate import NorthgateConfig, NorthgateConnector
                from simulators.revenues.app import create_app
                from simulators.serving import serve_in_thread

                base = stack.enter_context(serve_in_thread(create_app(
                    Path(tmp) / "rev.db", username="bench", password="bench-pw", seed_demo=True)))
                connector = NorthgateConnector(NorthgateConfig(endpoint=f"{base}/soap", username="bench",
                                                               password="bench-pw"))
            t0 = time.perf_counter()
            for case in cases(n):
                intake.record_case(case, source="pull", url=url)
            intake.map_received(url=url, limit=n)
            t1 = time.perf_counter()
            stats = dispatch.dispatch_all(connector, "revenues_northgate", batch_size=200, url=url)
            t2 = time.perf_counter()
            db.engine(url).dispose()
            assert stats.claimed == n, stats
    return {"intake_per_s": n / (t1 - t0), "dispatch_per_s": n / (t2 - t1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ledger", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--connector", choices=["scripted", "revenues"], default="scripted")
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        result = one_run(args.cases, args.ledger, args.connector)
        results.append(result)
        print(f"run {run + 1}: intake {result['intake_per_s']:.0f} cases/s, "
              f"dispatch {result['dispatch_per_s']:.0f} commands/s")
    print(f"median over {args.runs} runs ({args.cases} cases, ledger {args.ledger}, connector "
          f"{args.connector}): intake {statistics.median(r['intake_per_s'] for r in results):.0f} "
          f"cases/s, dispatch {statistics.median(r['dispatch_per_s'] for r in results):.0f} commands/s")


if __name__ == "__main__":
    main()
