"""Burst on the real stack: many signed webhooks as fast as the CRM simulator sends them.

    make up                                   # in another terminal (or pass --start)
    .venv/bin/python bench/load_burst.py [--executor local|celery] [--cases 1000] [--threads 16]
                                         [--start] [--home var/up] [--json out.json]
    .venv/bin/python bench/load_burst.py --cases 20 --start      # smoke run

Creates ``--cases`` cases in the CRM simulator from ``--threads`` clients at once; the CRM pushes
each to the hub's webhook. Meanwhile Airflow's ``/api/v2/monitor/health`` and the hub's ``/healthz``
are probed every 250 ms. Then it waits until every case is confirmed in its back office and its
outcome written back to the CRM, and prints: failed webhooks, failed trigger calls (publishes of
the hub's signal publisher that failed, from ``GET /api/signals``) with its other counters, the DAG
runs by what started them, process exits, probe latencies, and the time from the last webhook until
every case was in the back office and written back (issue 6: no failure, no exit, probes under 1 s,
all done within 60 s). Nothing here is a test: it reports figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from concurrent.futures import wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_stack import (PUSH_FAILURE, Crm, Ledger, Signals, Stack, cases,  # noqa: E402
                              describe, effects, expected_effects, latencies, now_utc, print_report,
                              probes, signal_report, stack, verify_writebacks)


def run(found: Stack, count: int, *, threads: int = 16, probe_interval: float = 0.25,
        drain_timeout: float = 900.0) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    run_cases = cases(run_id, count)
    exits_before = found.exits()
    signals = Signals(found)
    since = now_utc()
    pushes_before = found.log_matches("crm", PUSH_FAILURE)
    effects_before = effects(found)
    ledger, crm = Ledger(found, run_id), Crm(found, threads)
    watching = probes(found, probe_interval)
    started = time.time()
    wait([crm.submit(case) for case in run_cases])
    crm.close()
    last_webhook = max(crm.sent.values(), default=time.time())
    print(f"{len(crm.sent)} cases created in the CRM in {last_webhook - started:.1f} s "
          f"({len(crm.failed)} failed); waiting for the back offices and the write-backs", flush=True)
    in_backoffice = written_back = None
    counts: dict[str, int] = {}
    while time.time() - last_webhook < drain_timeout:
        counts = ledger.counts()
        done = counts["confirmed"] + counts["refused"]
        if in_backoffice is None and done >= len(crm.sent):
            in_backoffice = time.time() - last_webhook
        if written_back is None and counts["written_back"] >= len(crm.sent):
            written_back = time.time() - last_webhook
        if in_backoffice is not None and written_back is not None:
            break
        time.sleep(1)
    for probe in watching:
        probe.stop()
    times = ledger.times()
    ledger.close()
    after = effects(found)
    expected = expected_effects([c for c in run_cases if c["id"] in crm.sent])
    report: dict[str, Any] = {
        "when": now_utc(), "executor": found.info["executor"], "cases": count,
        "webhooks_sent_in_s": round(last_webhook - started, 1),
        "webhooks_per_s": round(len(crm.sent) / max(0.001, last_webhook - started), 1),
        "crm_puts_failed": len(crm.failed),
        "crm_pushes_failed": found.log_matches("crm", PUSH_FAILURE) - pushes_before,
        **signal_report(signals, found, since),
        "process_exits": {k: v - exits_before.get(k, 0) for k, v in found.exits().items()
                          if v - exits_before.get(k, 0)},
        "ledger": counts,
        "all_in_backoffice_after_last_webhook_s": None if in_backoffice is None else round(in_backoffice, 1),
        "all_written_back_after_last_webhook_s": None if written_back is None else round(written_back, 1),
        "webhook_to_backoffice": describe(latencies(crm.sent, times, "settled")),
        "webhook_to_writeback": describe(latencies(crm.sent, times, "written")),
        "backoffice_effects": {s: after.get(s, 0) - effects_before.get(s, 0) for s in expected},
        "backoffice_effects_expected": expected,
        "crm_writebacks_per_case": verify_writebacks(crm, sorted(crm.sent)),
        "health": {p.name: p.summary() for p in watching},
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", choices=["local", "celery"], default="local")
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=16, help="CRM clients at once")
    parser.add_argument("--start", action="store_true",
                        help="start a stack of its own instead of using `make up`'s")
    parser.add_argument("--home", type=Path, default=None, help="the running stack's folder (var/up)")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    with stack(args.executor, args.home, args.start) as found:
        report = run(found, args.cases, threads=args.threads, drain_timeout=args.drain_timeout)
    print_report(f"burst of {args.cases} webhooks ({args.executor} executor)", report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
