"""Reconciliation at scale: the pure comparison core and the external sort on generated sides.

    .venv/bin/python -m bench.reconcile --records 1000000 [--run-size 100000] [--seed 7]

Generates N records per side (ledger commands, back-office records, CRM write-backs, CRM case
states, ledger cases) with a known 0.1% of drifts spread over every finding class, runs the
comparison exactly as a reconciliation run does (the back-office and CRM sides arrive unsorted and
go through ``hub.reconcile.extsort``), and prints the time, the peak RSS and found-versus-seeded per
class. Exit status 1 when a seeded drift is not found or a finding was not seeded. Targets (issue
7): 1,000,000 records under 60 s and under 512 MB on the 2-core machine.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from connectors.base import BackOfficeRecord
from hub.reconcile import core
from hub.reconcile.extsort import DEFAULT_RUN_SIZE, Spool, sorted_stream
from hub.reconcile.findings import CLASSES, FindingClass

SYSTEM = "bench_system"
MISSING, UNKNOWN, MISMATCH, STATUS, WRITEBACK, STUCK, UNMAPPED = (
    c.value for c in (FindingClass.MISSING_IN_BACKOFFICE, FindingClass.UNKNOWN_IN_BACKOFFICE,
                      FindingClass.FIELD_MISMATCH, FindingClass.STATUS_NOT_IN_CRM,
                      FindingClass.WRITEBACK_MISSING, FindingClass.STUCK, FindingClass.UNMAPPED_CASE))
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
T_CREATED = NOW - timedelta(days=3)          # the record was created in the back office
T_WRITTEN = NOW - timedelta(days=3, seconds=-5)   # the hub wrote the outcome back after
T_LATER = NOW - timedelta(days=1)            # a later back-office change


@dataclass
class Plan:
    """Which index carries which drift."""

    records: int
    drift: dict[int, str] = field(default_factory=dict)

    @classmethod
    def make(cls, records: int) -> "Plan":
        count = max(len(CLASSES), records // 1000)
        stride = max(1, records // count)
        plan = cls(records)
        for j in range(count):
            index = j * stride + stride // 2
            if index < records:
                plan.drift[index] = CLASSES[j % len(CLASSES)]
        return plan

    def seeded(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {c: set() for c in CLASSES}
        for index, code in self.drift.items():
            out[code].add(expected_key(index, code))
        return out


def key(i: int) -> str:
    return f"K{i:09d}"


def crm_id(i: int) -> str:
    return f"C{i:09d}"


def expected_key(i: int, code: str) -> str:
    if code == UNKNOWN:
        return key(i) + "X"
    if code in (WRITEBACK, UNMAPPED):
        return crm_id(i)
    return key(i)


def payload(i: int) -> dict[str, object]:
    return {"uprn": 100_000_000 + i, "postcode": f"EX{i % 97} {i % 9}AB", "service": "bulky"}


def scattered(n: int) -> Iterator[int]:
    """0..n-1 in a scrambled order (a back office answers in its own order), without a list."""
    step = 7_919 if n % 7_919 else 7_907
    for j in range(n):
        yield (j * step + 13) % n


def ledger_commands(plan: Plan) -> Iterator[core.LedgerCommand]:
    for i in range(plan.records):
        stuck = plan.drift.get(i) == STUCK
        yield core.LedgerCommand(key(i), i + 1, i + 1, crm_id(i), "bench.op",
                                 "sending" if stuck else "confirmed", f"R{i}", payload(i),
                                 claimed_at=NOW - timedelta(hours=2) if stuck else None)


def backoffice_records(plan: Plan) -> Iterator[BackOfficeRecord]:
    for i in scattered(plan.records):
        code = plan.drift.get(i)
        if code == MISSING:
            continue
        fields = payload(i)
        if code == MISMATCH:
            fields = {**fields, "postcode": "ZZ9 9ZZ"}
        later = code == STATUS
        yield BackOfficeRecord(f"R{i}", key(i), "CLOSED" if later else "OPEN", fields,
                               crm_status="open", changed_at=T_LATER if later else T_CREATED)
        if code == UNKNOWN:
            yield BackOfficeRecord(f"X{i}", key(i) + "X", "OPEN", {}, crm_status="open")


def ledger_messages(plan: Plan) -> Iterator[core.LedgerMessage]:
    for i in range(plan.records):
        yield core.LedgerMessage(crm_id(i), i + 1, i + 1, i + 1, SYSTEM, "completed", f"R{i}",
                                 delivered=True, created_at=T_WRITTEN)


def crm_states(plan: Plan) -> Iterator[core.CrmView]:
    for i in scattered(plan.records):
        lost = plan.drift.get(i) == WRITEBACK
        yield core.CrmView(crm_id(i), "in_progress" if lost else "completed",
                           None if lost else f"R{i}", SYSTEM)


def ledger_cases(plan: Plan) -> Iterator[core.LedgerCase]:
    for i in range(plan.records):
        unmapped = plan.drift.get(i) == UNMAPPED
        yield core.LedgerCase(i + 1, crm_id(i), "received" if unmapped else "mapped",
                              NOW - timedelta(days=2))


def run(records: int, run_size: int = DEFAULT_RUN_SIZE) -> dict[str, object]:
    """Generate, compare, and return the figures (time, peak RSS, found vs seeded)."""
    plan = Plan.make(records)
    policy = core.Policy(now=NOW)
    tally = core.Tally()
    started = time.perf_counter()
    cpu_started = time.process_time()
    found: dict[str, set[str]] = {c: set() for c in CLASSES}
    duplicates = 0

    def take(findings: Iterator) -> None:  # type: ignore[type-arg]
        nonlocal duplicates
        for f in findings:
            bucket = found[f.code.value]
            duplicates += f.key in bucket
            bucket.add(f.key)

    seen: Spool[core.StatusSeen] = Spool(lambda s: s.crm_id, run_size=run_size)
    bo_sorted = sorted_stream(backoffice_records(plan), lambda r: r.key, run_size=run_size)
    take(core.compare_backoffice(SYSTEM, ledger_commands(plan), bo_sorted, policy, tally=tally,
                                 observe=seen.add))
    crm_sorted = sorted_stream(crm_states(plan), lambda v: v.crm_id, run_size=run_size)
    take(core.compare_crm(SYSTEM, ledger_messages(plan), crm_sorted, seen.sorted(), tally=tally))
    take(core.unmapped_cases(SYSTEM, ledger_cases(plan), policy, tally=tally))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    seeded = plan.seeded()
    per_class = {c: {"seeded": len(seeded[c]), "found": len(found[c] & seeded[c]),
                     "false": len(found[c] - seeded[c])} for c in CLASSES}
    return {"records": records, "seconds": elapsed, "cpu_seconds": cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "per_class": per_class, "duplicates": duplicates, "tally": tally.as_dict(),
            "ok": duplicates == 0 and all(v["found"] == v["seeded"] and v["false"] == 0
                                          for v in per_class.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--run-size", type=int, default=DEFAULT_RUN_SIZE,
                        help="items per sorted run spilled to disk by the external sort")
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    result = run(args.records, args.run_size)
    print(f"reconcile: {result['records']:,} records per side in {result['seconds']:.1f} s "
          f"({result['cpu_seconds']:.1f} s CPU), peak RSS {result['peak_rss_mb']:.0f} MB (targets for 1,000,000: 60 s, 512 MB)")
    print(f"{'class':<24}{'seeded':>8}{'found':>8}{'false':>8}")
    for code, row in result["per_class"].items():  # type: ignore[union-attr]
        print(f"{code:<24}{row['seeded']:>8}{row['found']:>8}{row['false']:>8}")
    print(f"compared: {result['tally']}")
    print("all seeded drifts found, no false finding" if result["ok"]
          else "CHECK: found and seeded differ")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
