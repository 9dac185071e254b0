"""Run the hub's DAGs in real Airflow (``dag.test()``: real DAG runs and task instances in the
Airflow metadata database), in the order a scheduler would trigger them. Called by ``demo`` in a
child process whose environment carries AIRFLOW_HOME, the connections and the ledger URL.

Prints one ``DEMO-RESULT {json}`` line per DAG run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from demo.plans import run_plan

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("plan", choices=["deliver", "sync", "reconcile"])
    parser.add_argument("--systems", nargs="+", required=True)
    parser.add_argument("--asynchronous", nargs="*", default=[])
    parser.add_argument("--answer-timeout", type=float, default=90.0)
    args = parser.parse_args()

    # dag.test() is not the scheduler: in Airflow 3.3.2 it cannot finish a run of a DAG that has
    # Deadline Alerts (DagRun.update_state looks the alerts up by id and finds dicts). The
    # scheduler (`make up`, production) keeps them.
    import os

    os.environ.setdefault("HUB_DEADLINE_MINUTES", "0")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(REPO / "dags"))
    if bag.import_errors:
        print("DEMO-RESULT " + json.dumps({"error": "import errors", "files": list(bag.import_errors)}))
        return 1

    def run(dag_id: str) -> str:
        started = time.monotonic()
        dagrun = bag.dags[dag_id].test()
        state = str(getattr(dagrun.state, "value", dagrun.state))
        print("DEMO-RESULT " + json.dumps({"dag_id": dag_id, "run_id": dagrun.run_id, "state": state,
                                           "seconds": round(time.monotonic() - started, 1)}), flush=True)
        return state

    failures = run_plan(args.plan, args.systems, args.asynchronous,
                        lambda dag_ids: [run(d) for d in dag_ids], answer_timeout=args.answer_timeout)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
