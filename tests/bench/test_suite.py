"""The benchmark suite runs end to end on a tiny size and prints its table (no timing asserted)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench import suite
from bench.report import Figure, markdown, table
from bench.sizes import SIZES


@pytest.mark.postgres
@pytest.mark.mariadb
@pytest.mark.sshd
def test_the_tiny_suite_measures_every_line(tmp_path: Path) -> None:
    figures = suite.run_suite(SIZES["tiny"], 1, list(suite.GROUPS), tmp_path)
    by_item: dict[str, list[Figure]] = {}
    for figure in figures:
        by_item.setdefault(figure.item, []).append(figure)
    assert set(by_item) == {"2", "3", "4", "5", "6"}
    measured = [f for f in figures if f.item in ("2", "5", "6")]
    missing = [f.name for f in measured if f.value is None or f.value <= 0]
    assert not missing, f"not measured: {missing}"
    assert all(f.ratio is not None for f in measured if f.anchor), "every anchor measured too"
    ceiling = [f for f in figures if f.item == "2"]
    assert not [f.note for f in ceiling if "CHECK" in f.note], \
        "the bare clients got the same answers as the hub"
    assert all(f.value is None and "--real-stack" in f.note
               for f in by_item["3"] + by_item["4"]), "no real stack unless asked for"
    text = table(figures)
    assert text.count("\n") == len(figures) + 1, "one line per figure under the header"
    assert all(line.split()[0] in {"2", "3", "4", "5", "6"} for line in text.splitlines()[2:])
    assert markdown(figures).count("\n") == len(figures) + 1


def test_real_scheduler_figures_compare_each_design_with_its_anchor() -> None:
    from bench import scheduler

    measured = {
        "latency": {"cases": 4, "dag_runs_per_case": 1.0, "task_instances_per_case": 1.0,
                    "webhook_to_backoffice": {"n": 4, "p50_s": 2.0, "p95_s": 3.0},
                    "webhook_to_writeback": {"n": 4, "p50_s": 2.5, "p95_s": 4.0},
                    "floor_signal_to_finished_run": {"n": 4, "p50_s": 1.5, "p95_s": 2.0}},
        "throughput": {"batched": [{"cases": 20, "seconds": 2.0, "cases_per_s": 10.0},
                                   {"cases": 20, "seconds": 1.0, "cases_per_s": 20.0},
                                   {"cases": 20, "seconds": 0.5, "cases_per_s": 40.0}],
                       "naive": [{"cases": 20, "seconds": 20.0, "cases_per_s": 1.0},
                                 {"cases": 20, "seconds": 10.0, "cases_per_s": 2.0},
                                 {"cases": 20, "seconds": None, "cases_per_s": None}]},
    }
    backoffice, writeback, batched, absolute = scheduler.figures(measured)
    assert (backoffice.value, backoffice.anchor_value, backoffice.ratio) == (3.0, 2.0, 2.0 / 3.0)
    assert backoffice.verdict == "met", "p95 within 1.5 times the floor"
    assert (writeback.ratio, writeback.verdict) == (0.5, "met")
    # the third naive run did not finish: that pair is left out of the ratio, not counted as 0
    assert batched.values == [10.0, 20.0] and batched.ratio == 10.0
    assert batched.verdict == "MISSED"
    assert absolute.value == 20.0 and absolute.verdict == "MISSED"
    assert scheduler.figures({})[0].note == "latency not measured"
