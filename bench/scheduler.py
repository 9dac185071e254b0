"""Deliverables 3 and 4: latency and throughput on the real scheduler (not measured here yet).

They run on the real stack (``make up``: Airflow's scheduler, API server and triggerer on
PostgreSQL) and measure the burst-proof trigger path; both are being built on their own branches.
Until they land, the table keeps their lines, marked as not measured, so the gap stays visible.
"""
from __future__ import annotations

from pathlib import Path

from bench.report import Figure
from bench.sizes import Size

PENDING = "not measured yet: needs the real-stack bench (issue 11 items 3-4)"


def run(size: Size, runs: int, workdir: Path) -> list[Figure]:
    return [
        Figure("3", "webhook -> back-office write, p95", "s",
               anchor="Airflow asset event -> finished empty run, p95", higher_is_better=False,
               target=1 / 1.5, note=PENDING),
        Figure("3", "webhook -> CRM write-back, p95", "s",
               anchor="Airflow asset event -> finished empty run, p95", higher_is_better=False,
               target=1 / 2, note=PENDING),
        Figure("4", "batched design, end to end", "cases/s",
               anchor="one mapped task per case, same cases", target=20, note=PENDING),
        Figure("4", "batched design, end to end (absolute)", "cases/s", target=100, note=PENDING),
    ]
