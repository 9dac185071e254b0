"""Deliverables 3 and 4: latency and throughput on the real scheduler (``bench/real_scheduler.py``).

They need a real Airflow (API server, scheduler, DAG processor and triggerer on PostgreSQL, Redis
for the signals), which takes minutes to start and loads the machine, so the suite measures them
only when asked: ``python -m bench --real-stack`` (``make bench BENCH_ARGS=--real-stack``). Without
it the table keeps their four lines, marked as not measured, so the gap stays visible; `make test`
never starts a stack for them.

Latency is one run of ``size.latency_cases`` webhooks one at a time (its p95 over those cases);
throughput is ``runs`` runs of each design on ``size.throughput_cases`` cases (medians).
"""
from __future__ import annotations

from pathlib import Path

from bench.report import Figure
from bench.sizes import Size

SKIPPED = "not measured: needs the real stack, run with --real-stack"
REAL_STACK = False
"""Set by ``python -m bench --real-stack``."""


def lines(note: str = "") -> list[Figure]:
    return [
        Figure("3", "webhook -> back-office write, p95", "s",
               anchor="Airflow asset event -> finished empty run, p95", higher_is_better=False,
               target=1 / 1.5, note=note),
        Figure("3", "webhook -> CRM write-back, p95", "s",
               anchor="Airflow asset event -> finished empty run, p95", higher_is_better=False,
               target=1 / 2, note=note),
        Figure("4", "batched design, end to end", "cases/s",
               anchor="one mapped task per case, same cases", target=20, note=note),
        Figure("4", "batched design, end to end (absolute)", "cases/s", target=100, note=note),
    ]


def figures(measured: dict) -> list[Figure]:
    """The four lines from ``bench.real_scheduler.measure``'s result."""
    backoffice, writeback, batched, absolute = lines()
    lat = measured.get("latency")
    if lat and lat["webhook_to_backoffice"].get("n") and lat["floor_signal_to_finished_run"].get("n"):
        floor = lat["floor_signal_to_finished_run"]
        for figure, key in ((backoffice, "webhook_to_backoffice"), (writeback, "webhook_to_writeback")):
            hub = lat[key]
            figure.add(hub["p95_s"], floor["p95_s"])
            figure.note = (f"{hub['n']} of {lat['cases']} cases one at a time: p50 {hub['p50_s']} s "
                           f"vs floor p50 {floor['p50_s']} s; {lat['dag_runs_per_case']} DAG runs, "
                           f"{lat['task_instances_per_case']} task instances per case")
    else:
        backoffice.note = writeback.note = "latency not measured"
    through = measured.get("throughput")
    if through and through.get("batched"):
        for fast in through["batched"]:
            if fast["cases_per_s"]:
                absolute.add(fast["cases_per_s"])
        for fast, naive in zip(through["batched"], through.get("naive", [])):
            if fast["cases_per_s"] and naive["cases_per_s"]:
                batched.add(fast["cases_per_s"], naive["cases_per_s"])
        fast = through["batched"][-1]
        naive_note = (f", naive {through['naive'][-1]['seconds']} s" if through.get("naive")
                      else "; naive not run")
        batched.note = absolute.note = (
            f"{fast['cases']} cases (Revenues SOAP + Licensing), {len(through['batched'])} run(s); "
            f"last: batched {fast['seconds']} s{naive_note}, from intake to the last CRM "
            "write-back")
    else:
        batched.note = absolute.note = "throughput not measured"
    return [backoffice, writeback, batched, absolute]


def run(size: Size, runs: int, workdir: Path) -> list[Figure]:
    if not REAL_STACK:
        return lines(SKIPPED)
    from bench import real_scheduler

    return figures(real_scheduler.measure(latency_cases=size.latency_cases,
                                          throughput_cases=size.throughput_cases, runs=runs))
