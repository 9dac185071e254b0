"""Ward of a case, from its UPRN or postcode, through a ward table (CSV).

The shipped table covers the demo town (``hub/data/wards_exampleton.csv``); a council points
``HUB_WARD_TABLE`` at its own, built from the ONS postcode directory and its address gazetteer.
Lookup order: UPRN, full postcode, postcode sector, postcode district. The ward is stored on the
case when it is recorded, so that management information keeps it after retention blanks the case.
"""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).parent / "data" / "wards_exampleton.csv"
KINDS = ("uprn", "postcode", "sector", "district")
_POSTCODE = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?) ?(\d)([A-Z]{2})$")
MAX_DEPTH = 6


@dataclass(frozen=True)
class WardTable:
    entries: Mapping[tuple[str, str], tuple[str, str]]
    """(kind, key) -> (ward code, ward name)."""

    @property
    def names(self) -> dict[str, str]:
        return {code: name for code, name in self.entries.values()}

    def ward_for(self, *, uprn: str | None = None, postcode: str | None = None) -> str | None:
        if uprn and ("uprn", uprn.strip()) in self.entries:
            return self.entries[("uprn", uprn.strip())][0]
        if postcode:
            compact = re.sub(r"\s+", "", postcode).upper()
            match = _POSTCODE.match(compact)
            if match:
                district, sector_digit, unit = match.groups()
                for kind, key in (("postcode", f"{district} {sector_digit}{unit}"),
                                  ("sector", f"{district} {sector_digit}"), ("district", district)):
                    if (kind, key) in self.entries:
                        return self.entries[(kind, key)][0]
        return None


def load(path: Path | str) -> WardTable:
    entries: dict[tuple[str, str], tuple[str, str]] = {}
    with open(path, encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        for n, row in enumerate(rows, start=2):
            kind = (row.get("kind") or "").strip()
            if kind not in KINDS or not row.get("key") or not row.get("ward_code"):
                raise ValueError(f"ward table {path} line {n}: needs kind ({'/'.join(KINDS)}), key, ward_code")
            entries[(kind, row["key"].strip().upper())] = (row["ward_code"].strip()[:16],
                                                           (row.get("ward_name") or row["ward_code"]).strip())
    return WardTable(entries)


@lru_cache(maxsize=2)
def _cached(path: str) -> WardTable:
    return load(path)


def table() -> WardTable:
    return _cached(os.environ.get("HUB_WARD_TABLE") or str(SHIPPED))


def _find(data: Any, wanted: str, depth: int = 0) -> str | None:
    """The first string value of a key named ``wanted`` in nested case data (breadth first)."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(data, Mapping):
        value = data.get(wanted)
        if isinstance(value, (str, int)) and str(value).strip():
            return str(value)[:40]
        children = list(data.values())
    elif isinstance(data, list):
        children = data[:50]
    else:
        return None
    for child in children:
        found = _find(child, wanted, depth + 1)
        if found:
            return found
    return None


def ward_of_case(data: Mapping[str, Any] | None) -> str | None:
    """The ward code for a case's data (its UPRN first, then its postcode), or None."""
    if not data:
        return None
    return table().ward_for(uprn=_find(data, "uprn"), postcode=_find(data, "postcode"))
