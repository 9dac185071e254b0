"""Sustained load on the real stack: cases at a steady rate for minutes, through the CRM's webhooks.

    make up                                   # in another terminal (or pass --start)
    .venv/bin/python bench/load_sustained.py [--executor local|celery] [--rate 10] [--minutes 10]
                                             [--start] [--home var/up] [--json out.json]
    .venv/bin/python bench/load_sustained.py --rate 2 --minutes 0.5 --start     # smoke run

Creates ``--rate`` cases a second in the CRM simulator (each pushed to the hub's webhook) for
``--minutes``, sampling the backlog (cases sent and not yet confirmed in their back office) every 5
seconds and probing Airflow's and the hub's health endpoints every 250 ms; then waits for the
backlog to drain and prints the backlog over time and p50/p95 webhook-to-back-office and
webhook-to-write-back (issue 6: backlog bounded, p95 under 15 s). Nothing here is a test.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from concurrent.futures import wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_stack import (PUSH_FAILURE, Crm, Ledger, Signals, Stack, cases,  # noqa: E402
                              describe, effects, expected_effects, latencies, now_utc, print_report,
                              probes, signal_report, stack, verify_writebacks)

SAMPLE_SECONDS = 5.0


def run(found: Stack, rate: float, minutes: float, *, threads: int = 16,
        probe_interval: float = 0.25, drain_timeout: float = 900.0) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:6]
    total = max(1, round(rate * minutes * 60))
    run_cases = cases(run_id, total)
    exits_before = found.exits()
    signals = Signals(found)
    since = now_utc()
    pushes_before = found.log_matches("crm", PUSH_FAILURE)
    effects_before = effects(found)
    ledger, crm = Ledger(found, run_id), Crm(found, threads)
    watching = probes(found, probe_interval)
    backlog: list[dict[str, Any]] = []
    sending = threading.Event()
    sending.set()
    started = time.time()

    def sample() -> None:
        while sending.is_set() or not backlog or backlog[-1]["backlog"] > 0:
            counts = ledger.counts()
            sent = len(crm.sent)
            backlog.append({"t": round(time.time() - started), "sent": sent,
                            "in_backoffice": counts["confirmed"] + counts["refused"],
                            "written_back": counts["written_back"],
                            "backlog": sent - counts["confirmed"] - counts["refused"]})
            if not sending.is_set() and time.time() - started > minutes * 60 + drain_timeout:
                return
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lag = 0.0
    futures = []
    for n, case in enumerate(run_cases):
        due = started + n / rate
        now = time.time()
        if due > now:
            time.sleep(due - now)
        else:
            lag = max(lag, now - due)
        futures.append(crm.submit(case))
    wait(futures)
    crm.close()
    last_webhook = max(crm.sent.values(), default=time.time())
    sending.clear()
    print(f"{len(crm.sent)} cases sent in {last_webhook - started:.0f} s; draining", flush=True)
    sampler.join(drain_timeout + 30)
    for probe in watching:
        probe.stop()
    times = ledger.times()
    counts = ledger.counts()
    ledger.close()
    after = effects(found)
    expected = expected_effects([c for c in run_cases if c["id"] in crm.sent])
    during = [b["backlog"] for b in backlog if b["t"] <= last_webhook - started]
    thirds = max(1, len(during) // 3)
    drained = next((b["t"] for b in backlog if b["t"] >= last_webhook - started
                    and b["backlog"] == 0), None)
    return {
        "when": now_utc(), "executor": found.info["executor"], "rate_per_s": rate,
        "minutes": minutes, "cases": total, "sender_max_lag_s": round(lag, 1),
        "crm_puts_failed": len(crm.failed),
        "crm_pushes_failed": found.log_matches("crm", PUSH_FAILURE) - pushes_before,
        **signal_report(signals, found, since),
        "process_exits": {k: v - exits_before.get(k, 0) for k, v in found.exits().items()
                          if v - exits_before.get(k, 0)},
        "ledger": counts,
        "backlog_max": max(during, default=0),
        "backlog_mean_first_third": round(sum(during[:thirds]) / thirds, 1) if during else 0,
        "backlog_mean_last_third": round(sum(during[-thirds:]) / thirds, 1) if during else 0,
        "drained_after_last_webhook_s": None if drained is None
        else round(drained - (last_webhook - started)),
        "webhook_to_backoffice": describe(latencies(crm.sent, times, "settled")),
        "webhook_to_writeback": describe(latencies(crm.sent, times, "written")),
        "backoffice_effects": {s: after.get(s, 0) - effects_before.get(s, 0) for s in expected},
        "backoffice_effects_expected": expected,
        "crm_writebacks_per_case": verify_writebacks(crm, sorted(crm.sent)),
        "health": {p.name: p.summary() for p in watching},
        "backlog_over_time": [[b["t"], b["backlog"]] for b in backlog[::max(1, len(backlog) // 40)]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", choices=["local", "celery"], default="local")
    parser.add_argument("--rate", type=float, default=10.0, help="cases a second")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=16, help="CRM clients at once")
    parser.add_argument("--start", action="store_true",
                        help="start a stack of its own instead of using `make up`'s")
    parser.add_argument("--home", type=Path, default=None, help="the running stack's folder (var/up)")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    with stack(args.executor, args.home, args.start) as found:
        report = run(found, args.rate, args.minutes, threads=args.threads,
                     drain_timeout=args.drain_timeout)
    print_report(f"{args.rate:g} cases/s for {args.minutes:g} min ({args.executor} executor)", report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
