"""Figures, their anchors and the one table ``make bench`` prints.

A ``Figure`` is one measured rate (or time) with, where one exists, the anchor it is compared with,
measured in the same run: the bare protocol client for a connector, SQLite for PostgreSQL, OpenSSH
for the SFTP transport. Each figure is the median of the runs; its ratio is the median of the
per-run ratios (so a run slowed by a busy machine slows figure and anchor alike).
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Figure:
    """One line of the table."""

    item: str
    """The issue's deliverable number (``2``, ``5``, ``6``...)."""
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    anchor: str | None = None
    """What the figure is compared with, e.g. ``bare keep-alive client``."""
    anchor_values: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    target: float | None = None
    """Target ratio (figure / anchor, or anchor / figure for times), or an absolute target when
    there is no anchor."""
    note: str = ""

    def add(self, value: float, anchor: float | None = None) -> None:
        self.values.append(value)
        if anchor is not None:
            self.anchor_values.append(anchor)

    @property
    def value(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def anchor_value(self) -> float | None:
        return statistics.median(self.anchor_values) if self.anchor_values else None

    @property
    def ratio(self) -> float | None:
        """Median of the per-run ratios, oriented so that higher is better."""
        if not self.anchor_values or len(self.anchor_values) != len(self.values):
            return None
        ratios = [(v / a if self.higher_is_better else a / v) if v and a else 0.0
                  for v, a in zip(self.values, self.anchor_values, strict=True)]
        return statistics.median(ratios)

    @property
    def verdict(self) -> str:
        if self.target is None or not self.values:
            return ""
        measured = self.ratio if self.anchor else self.value
        if measured is None:
            return "not measured"
        ok = measured >= self.target if (self.anchor or self.higher_is_better) \
            else measured <= self.target
        return "met" if ok else "MISSED"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _target(figure: Figure) -> str:
    if figure.target is None:
        return ""
    if figure.anchor:
        return f">= {figure.target:.2g}x"
    return f"{'>=' if figure.higher_is_better else '<='} {figure.target:g}"


COLUMNS = ("item", "measurement", "value", "unit", "anchor", "anchor value", "ratio", "target",
           "result")


def rows(figures: Sequence[Figure]) -> list[tuple[str, ...]]:
    return [(f.item, f.name, _number(f.value), f.unit, f.anchor or "", _number(f.anchor_value),
             _number(f.ratio) if f.ratio is not None else "", _target(f),
             f.verdict + (f" ({f.note})" if f.note else "")) for f in figures]


def table(figures: Sequence[Figure]) -> str:
    """A plain-text table, one line per figure."""
    body = rows(figures)
    widths = [max(len(c), *(len(r[i]) for r in body)) if body else len(c)
              for i, c in enumerate(COLUMNS)]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = [line.format(*COLUMNS), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in body]
    return "\n".join(s.rstrip() for s in out)


def markdown(figures: Sequence[Figure]) -> str:
    """The same table in Markdown (for docs/performance.md)."""
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(r) + " |" for r in rows(figures)]
    return "\n".join(out)
