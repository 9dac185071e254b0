"""The external sort: same order as sorted(), spilled runs, files removed."""
from __future__ import annotations

import random
from pathlib import Path

from hub.reconcile.extsort import Spool, sorted_stream


def test_sorts_like_sorted_across_spilled_runs(tmp_path: Path) -> None:
    rng = random.Random(5)
    items = [(rng.randrange(1000), i) for i in range(5000)]
    rng.shuffle(items)
    spool = Spool(lambda t: t[0], run_size=300, tmp_dir=str(tmp_path))
    spool.extend(items)
    assert spool.runs_spilled == 16
    out = list(spool.sorted())
    assert [t[0] for t in out] == sorted(t[0] for t in items)
    assert sorted(out) == sorted(items)
    assert list(tmp_path.iterdir()) == []


def test_small_streams_never_touch_disk(tmp_path: Path) -> None:
    out = sorted_stream(["b", "c", "a"], str, run_size=10, tmp_dir=str(tmp_path))
    assert list(out) == ["a", "b", "c"]


def test_empty_stream() -> None:
    assert list(sorted_stream([], str, run_size=2)) == []
