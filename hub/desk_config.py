"""The work desk's configuration: team addresses, per-kind SLAs and resolution codes.

Read from ``HUB_DESK_CONFIG`` (a YAML file) or the shipped ``hub/desk.yaml``; validated with
pydantic when first used, so a wrong file fails with the field that is wrong.
"""
from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

SHIPPED = Path(__file__).with_name("desk.yaml")
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
CrmStatus = Literal["completed", "rejected", "needs_review", "in_progress"]


class DeskConfigError(ValueError):
    """The desk configuration file cannot be used (the message names the field)."""


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    label: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    crm_status: CrmStatus | None = None


class KindConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    sla_hours: float = Field(gt=0, le=24 * 365)
    resolutions: tuple[Resolution, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> "KindConfig":
        codes = [r.code for r in self.resolutions]
        if len(codes) != len(set(codes)):
            raise ValueError("resolution codes repeat")
        return self

    @property
    def sla(self) -> timedelta:
        return timedelta(hours=self.sla_hours)

    def resolution(self, code: str) -> Resolution | None:
        return next((r for r in self.resolutions if r.code == code), None)


class TeamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)] | None = None


class DeskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    teams: dict[str, TeamConfig]
    default: KindConfig
    kinds: dict[str, KindConfig] = {}

    def kind(self, kind: str) -> KindConfig:
        return self.kinds.get(kind, self.default)

    def team_label(self, team: str) -> str:
        found = self.teams.get(team)
        return found.label if found else team.capitalize()

    def team_email(self, team: str) -> str | None:
        found = self.teams.get(team)
        return found.email if found else None


def load(path: Path | str | None = None) -> DeskConfig:
    path = Path(path or os.environ.get("HUB_DESK_CONFIG") or SHIPPED)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DeskConfigError(f"desk configuration {path}: cannot read it ({type(exc).__name__})") from exc
    try:
        return DeskConfig.model_validate(raw)
    except ValidationError as exc:
        where = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise DeskConfigError(f"desk configuration {path}: check {', '.join(where)}") from exc


@lru_cache(maxsize=4)
def _cached(path: str) -> DeskConfig:
    return load(path)


def current() -> DeskConfig:
    """The configuration in force (loaded once per process per file)."""
    return _cached(os.environ.get("HUB_DESK_CONFIG") or str(SHIPPED))
