"""What every demo driver shares: its folder, secrets, environment, simulators, staff changes and
the summary it prints (``make demo``, ``make demo-change``, ``make up``, ``make demo-celery``)."""
from __future__ import annotations

import datetime
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.stack import REPO, Stack, load_secrets
from demo.systems import CrmDemo, DemoSystem, demo_systems

COLUMNS = ("received", "sent", "confirmed", "rejected", "written_back", "work_items",
           "backoffice_effects")


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def default_home(folder: str) -> Path:
    """``HUB_DEMO_HOME`` when set (tests), else ``var/<folder>`` in the repository."""
    return Path(os.environ.get("HUB_DEMO_HOME") or REPO / "var" / folder).resolve()


HUB_ENV = "hub.env"
HUB_ENV_SETTINGS = ("HUB_DATABASE_URL", "HUB_INSTANCES", "HUB_DEMO_TODAY")


@dataclass
class Demo:
    """One demo folder and what runs from it."""

    home: Path
    secrets: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    crm: CrmDemo | None = None
    systems: list[DemoSystem] = field(default_factory=list)

    def today(self) -> str:
        """The demo's "today", fixed on its first run so that later runs seed identical cases."""
        path = self.home / "today.txt"
        if not path.exists():
            path.write_text(datetime.date.today().isoformat())
        return path.read_text().strip()

    def base_env(self) -> dict[str, str]:
        airflow_home = self.home / "airflow"
        return {
            "HUB_DEMO_TODAY": self.today(),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "HUB_DATABASE_URL": f"sqlite:///{self.home / 'hub.db'}",
            "HUB_TASK_RETRIES": "0",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def setup(self, only: list[str] | None = None,
              makers: dict[str, Callable[[], str]] | None = None, **overrides: str) -> None:
        """Secrets, the environment for Airflow and the simulators, and the systems to run
        (``only`` those named, else all)."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        available = demo_systems()
        classes = [cls for cls in available if only is None or cls.system_id in only]
        unknown = sorted(set(only or []) - {cls.system_id for cls in available})
        if unknown:
            raise SystemExit(f"[demo] unknown system(s): {', '.join(unknown)}; known: "
                             + ", ".join(cls.system_id for cls in available))
        names = ["crm_token", "crm_webhook_secret", "hub_api_token",
                 *[n for cls in available for n in cls.secret_names()]]
        self.secrets = load_secrets(self.home / "secrets.json", names, makers)
        self.env = {**self.base_env(), **overrides}
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("HUB_")})   # simulators too
        self.crm = CrmDemo(self.home, self.secrets)
        self.systems = [cls(self.home, self.secrets) for cls in classes]

    def write_hub_env(self) -> Path:
        """``<home>/hub.env`` (0600): what ``hub`` needs to work on this stack from another
        terminal (``hub --env-file var/up/hub.env reconcile``): the ledger URL and the CRM's and
        simulators' Airflow Connections. It holds the stack's generated secrets; never commit it."""
        from hub import envfile

        keep = {k: v for k, v in self.env.items()
                if k.startswith("AIRFLOW_CONN_") or k in HUB_ENV_SETTINGS}
        return envfile.write(self.home / HUB_ENV, keep, header=(
            "The stack's ledger and Connections for `hub --env-file` (or `set -a; . FILE; set +a`).\n"
            "Written by the demo; holds its generated secrets: private, never commit it."))

    def start_systems(self, stack: Stack) -> None:
        """Prepare each back office's storage and start its simulator processes."""
        for system in self.systems:
            system.prepare()
            for process in system.processes():
                stack.start(process)

    def staff_changes(self, *, again: bool = False) -> dict[str, tuple[str, str]]:
        """One back-office staff change per system, to a confirmed record the hub created.

        The first demo run does this once; ``again`` picks a record not changed before. Returns
        ``{system: (reference, crm_id)}``; the changed references are kept in staff_changes.json.
        """
        marker = self.home / "staff_changes.json"
        done: dict[str, list[str]] = json.loads(marker.read_text()) if marker.exists() else {}
        if done and not again:
            return {}
        os.environ.update(self.env)
        from sqlalchemy import select

        from hub.ledger.db import session_scope
        from hub.ledger.models import Case, Command, CommandState, OutboxMessage

        changed: dict[str, tuple[str, str]] = {}
        # a case whose record changed before (under another reference: one reconciliation
        # recreated) is not picked again: each change is its case's first status note
        updated = select(OutboxMessage.crm_id).where(OutboxMessage.kind == "update")
        with session_scope() as session:
            for system in self.systems:
                earlier = done.get(system.system_id, [])
                row = session.execute(select(Command.reference, Case.crm_id).join(Case).where(
                    Command.system == system.system_id,
                    Command.state == CommandState.CONFIRMED.value,
                    Command.reference.is_not(None), Command.reference.not_in(earlier),
                    Case.crm_id.not_in(updated))
                    .order_by(Command.id).limit(1)).first()
                if row:
                    system.staff_change(row.reference)
                    changed[system.system_id] = (row.reference, row.crm_id)
                    done[system.system_id] = [*earlier, row.reference]
        marker.write_text(json.dumps(done, indent=2))
        deadline = time.monotonic() + 60   # file-exchange back offices publish on their next run
        while changed and not all(s.staff_changes_published() for s in self.systems):
            if time.monotonic() > deadline:
                raise SystemExit("[demo] a back office did not publish its staff change within 60 s")
            time.sleep(0.5)
        return changed

    def summarise(self, before: dict[str, dict[str, int]],
                  effects_before: dict[str, int]) -> dict[str, dict[str, Any]]:
        """Ledger totals per system, the back office's own count of changes, and this run's part."""
        from hub import reports

        after = reports.system_figures()
        delta = reports.difference(after, before)
        summary: dict[str, dict[str, Any]] = {}
        for system in self.systems:
            figures = dict(after.get(system.system_id, {}))
            figures["backoffice_effects"] = system.effects()
            this_run = dict(delta.get(system.system_id, {}))
            this_run["backoffice_effects"] = (figures["backoffice_effects"]
                                              - effects_before[system.system_id])
            figures["this_run"] = this_run
            summary[system.system_id] = figures
        return summary

    def print_summary(self, summary: dict[str, dict[str, Any]], crm_stats: dict[str, Any],
                      reconciliation: dict[str, Any] | None = None) -> None:
        """Print the table and write summary.json (systems, and ``reconciliation`` when given)."""
        written: dict[str, Any] = dict(summary)
        if reconciliation is not None:
            written["reconciliation"] = reconciliation
        (self.home / "summary.json").write_text(json.dumps(written, indent=2, sort_keys=True))
        print()
        path = self.home / "summary.json"
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        print(f"Summary per back-office system (totals in the ledger; {shown}):")
        print_table(summary)
        print()
        print("This run: " + "; ".join(
            f"{s}: {f['this_run'].get('sent', 0)} sent, {f['this_run'].get('backoffice_effects', 0)} "
            f"back-office changes, {f['this_run'].get('written_back', 0) + f['this_run'].get('updates_written_back', 0)} "
            "written back" for s, f in summary.items()))
        print(f"CRM: {crm_stats.get('writebacks_applied', '?')} write-backs applied in all.")


def print_table(summary: dict[str, dict[str, Any]]) -> None:
    width = max(len(s) for s in summary) if summary else 10
    header = f"{'system':<{width}}  " + "  ".join(f"{c:>{len(c)}}" for c in COLUMNS)
    print(header)
    print("-" * len(header))
    for system, figures in summary.items():
        print(f"{system:<{width}}  " + "  ".join(f"{figures.get(c, 0):>{len(c)}}" for c in COLUMNS))
