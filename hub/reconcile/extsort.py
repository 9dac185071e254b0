"""External sort: sort a stream too large for memory in bounded memory.

Items are gathered in runs of ``run_size``; each full run is sorted in memory and spilled to a
temporary file (pickled in blocks); the runs are then merged lazily with ``heapq.merge``, reading
one block of each run at a time. Memory is about ``run_size`` items while spilling and
``runs x BLOCK`` items while merging. A stream that fits in one run is never written to disk.

Only the hub's own value objects go through it (never unpickled input from outside).
"""
from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Generic, TypeVar

T = TypeVar("T")

DEFAULT_RUN_SIZE = 100_000
BLOCK = 2_000


class Spool(Generic[T]):
    """Collect items (``add``), then read them back once in ``key`` order (``sorted``)."""

    def __init__(self, key: Callable[[T], Any], *, run_size: int = DEFAULT_RUN_SIZE,
                 tmp_dir: str | None = None) -> None:
        if run_size < 1:
            raise ValueError("run_size must be at least 1")
        self.key = key
        self.run_size = run_size
        self.tmp_dir = tmp_dir
        self.count = 0
        self._run: list[T] = []
        self._files: list[IO[bytes]] = []

    def add(self, item: T) -> None:
        self._run.append(item)
        self.count += 1
        if len(self._run) >= self.run_size:
            self._spill()

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self.add(item)

    @property
    def runs_spilled(self) -> int:
        return len(self._files)

    def sorted(self) -> Iterator[T]:
        """Every item added, in ascending key order (stable within a run); once."""
        try:
            self._run.sort(key=self.key)
            if not self._files:
                run, self._run = self._run, []
                yield from run
                return
            if self._run:
                self._spill()
            yield from heapq.merge(*(_read(f) for f in self._files), key=self.key)
        finally:
            self.close()

    def close(self) -> None:
        """Remove the temporary files."""
        for handle in self._files:
            handle.close()
        self._files = []
        self._run = []

    def _spill(self) -> None:
        self._run.sort(key=self.key)
        handle = tempfile.TemporaryFile(prefix="hub-reconcile-", dir=self.tmp_dir)
        dump = pickle.Pickler(handle, protocol=pickle.HIGHEST_PROTOCOL)
        run = self._run
        for start in range(0, len(run), BLOCK):
            dump.dump(run[start:start + BLOCK])
            dump.clear_memo()
        handle.flush()
        handle.seek(0)
        self._files.append(handle)
        self._run = []


def sorted_stream(items: Iterable[T], key: Callable[[T], Any], *, run_size: int = DEFAULT_RUN_SIZE,
                  tmp_dir: str | None = None) -> Iterator[T]:
    """``items`` in ascending ``key`` order, in bounded memory (temporary files removed when the
    returned iterator is exhausted or closed)."""
    spool: Spool[T] = Spool(key, run_size=run_size, tmp_dir=tmp_dir)
    try:
        spool.extend(items)
    except BaseException:
        spool.close()
        raise
    return spool.sorted()


def _read(handle: IO[bytes]) -> Iterator[Any]:
    while True:
        try:
            block = pickle.load(handle)
        except EOFError:
            return
        yield from block
