"""``--profile DIR``: a pyinstrument profile of each timed hub section, as text, for docs and fixes.

Off by default (the profiler slows what it watches); the figures of a profiled run are not the
ones to quote.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

_directory: Path | None = None


def enable(directory: Path) -> None:
    global _directory
    directory.mkdir(parents=True, exist_ok=True)
    _directory = directory


@contextlib.contextmanager
def profiled(name: str) -> Iterator[None]:
    """Profile the block into ``<DIR>/<name>.txt`` when profiling is on (the last run wins)."""
    if _directory is None:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        (_directory / f"{name}.txt").write_text(
            profiler.output_text(unicode=False, color=False, show_all=False))
