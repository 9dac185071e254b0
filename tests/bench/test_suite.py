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
    assert all(f.value is None and "not measured yet" in f.note
               for f in by_item["3"] + by_item["4"]), "real-scheduler lines are placeholders"
    text = table(figures)
    assert text.count("\n") == len(figures) + 1, "one line per figure under the header"
    assert all(line.split()[0] in {"2", "3", "4", "5", "6"} for line in text.splitlines()[2:])
    assert markdown(figures).count("\n") == len(figures) + 1
