"""Run the benchmark suite and print one table.

    .venv/bin/python -m bench [--size full|small|tiny] [--runs 3] [--only ceiling,ledger,...]
                              [--markdown FILE] [--real-stack] [--lanes N]

Items 3 and 4 (the ``scheduler`` group) need a real Airflow of their own: they are measured only
with ``--real-stack``, and otherwise shown as not measured.

Each group measures its figures and their anchors in the same run; the table shows the median of
the runs. See docs/performance.md for what each line means and the last results.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from bench import ceiling, ledger, profiling, scheduler, systems, transports
from bench.report import Figure, markdown, table
from bench.sizes import SIZES, Size

GROUPS: dict[str, Callable[[Size, int, Path], list[Figure]]] = {
    "ceiling": ceiling.run,
    "ledger": ledger.run,
    "transports": transports.run,
    "scheduler": scheduler.run,
}


def machine() -> str:
    """One line describing where the figures were measured."""
    load = os.getloadavg()
    return (f"{platform.node()}: {psutil.cpu_count(logical=True)} CPUs "
            f"({platform.processor() or platform.machine()}), "
            f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, Python "
            f"{platform.python_version()}, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")


def run_suite(size: Size, runs: int, groups: list[str], workdir: Path) -> list[Figure]:
    figures: list[Figure] = []
    for name in groups:
        started = time.perf_counter()
        print(f"# {name} ({size.name}, {runs} run{'s' * (runs != 1)})...", file=sys.stderr,
              flush=True)
        figures += GROUPS[name](size, runs, workdir / name)
        print(f"# {name} done in {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(GROUPS),
                        help=f"comma-separated groups: {', '.join(GROUPS)}")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="write a pyinstrument profile of each timed hub section to DIR")
    parser.add_argument("--real-stack", action="store_true",
                        help="measure items 3 and 4 on a real Airflow the bench starts and stops "
                             "(minutes; PostgreSQL and Redis needed)")
    parser.add_argument("--lanes", type=int, metavar="N",
                        help="concurrent_sends for the SOAP connectors in the ceiling (default: "
                             "the connectors' own, 4; 1 sends one command at a time)")
    args = parser.parse_args(argv)
    scheduler.REAL_STACK = args.real_stack
    if args.lanes is not None:
        if args.lanes < 1:
            parser.error("--lanes must be at least 1")
        systems.LANES = args.lanes
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown groups {unknown}; known: {', '.join(GROUPS)}")
    if args.profile:
        profiling.enable(args.profile)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"# {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        figures = run_suite(SIZES[args.size], args.runs, groups, Path(tmp))
    print(table(figures))
    if args.markdown:
        args.markdown.write_text(markdown(figures) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
