"""`make demo`: the hub end to end on its embedded default (simulators, SQLite, Airflow).

Starts the CRM and back-office simulators, prepares the ledger and Airflow's metadata database, loads
the sample CRM cases, runs the DAGs in real Airflow, makes one back-office staff change per system and
syncs it back, prints a summary per system and writes it to var/demo/summary.json. Everything it
starts is stopped before it exits. State is kept in var/demo/, so a second run shows that nothing is
applied twice. `--up` instead keeps the stack running with the Airflow UI for a person to explore.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from demo.stack import REPO, Process, Stack, load_secrets
from demo.systems import SYSTEMS, CrmDemo, DemoSystem, airflow_env

HOME = Path(os.environ.get("HUB_DEMO_HOME") or REPO / "var" / "demo").resolve()
COLUMNS = ("received", "sent", "confirmed", "rejected", "written_back", "work_items",
           "backoffice_effects")


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def demo_today() -> str:
    """The demo's "today", fixed on its first run so that later runs seed identical cases."""
    path = HOME / "today.txt"
    if not path.exists():
        import datetime

        path.write_text(datetime.date.today().isoformat())
    return path.read_text().strip()


def base_env() -> dict[str, str]:
    airflow_home = HOME / "airflow"
    return {
        "HUB_DEMO_TODAY": demo_today(),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "HUB_DATABASE_URL": f"sqlite:///{HOME / 'hub.db'}",
        "HUB_TASK_RETRIES": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def run_airflow(plan: str, env: dict[str, str], systems: list[DemoSystem]) -> list[dict[str, Any]]:
    argv = [sys.executable, "-m", "demo.airflow_runs", plan,
            "--systems", *[s.system_id for s in systems],
            "--asynchronous", *[s.system_id for s in systems if s.asynchronous]]
    with open(HOME / "logs" / "airflow-runs.log", "ab") as log:
        proc = subprocess.run(argv, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE,
                              stderr=log, timeout=600)
    log_text = proc.stdout.decode("utf-8", "replace")
    (HOME / "logs" / "airflow-runs.log").open("a").write(log_text)
    results = [json.loads(line.split(" ", 1)[1]) for line in log_text.splitlines()
               if line.startswith("DEMO-RESULT ")]
    for result in results:
        say(f"  Airflow DAG run {result.get('dag_id')}: {result.get('state')} "
            f"({result.get('seconds')} s)")
    if proc.returncode != 0:
        raise SystemExit(f"[demo] a DAG run failed (exit {proc.returncode}); "
                         f"see {HOME / 'logs' / 'airflow-runs.log'}")
    return results


def staff_changes(systems: list[DemoSystem], env: dict[str, str], *,
                  again: bool = False) -> dict[str, tuple[str, str]]:
    """One back-office staff change per system, to a confirmed record the hub created.

    The first demo run does this once; ``again`` picks a record not changed before. Returns
    ``{system: (reference, crm_id)}``; the changed references are kept in staff_changes.json.
    """
    marker = HOME / "staff_changes.json"
    done: dict[str, list[str]] = json.loads(marker.read_text()) if marker.exists() else {}
    if done and not again:
        return {}
    os.environ.update(env)
    from sqlalchemy import select

    from hub.ledger.db import session_scope
    from hub.ledger.models import Case, Command, CommandState

    changed: dict[str, tuple[str, str]] = {}
    with session_scope() as session:
        for system in systems:
            earlier = done.get(system.system_id, [])
            row = session.execute(select(Command.reference, Case.crm_id).join(Case).where(
                Command.system == system.system_id, Command.state == CommandState.CONFIRMED.value,
                Command.reference.is_not(None), Command.reference.not_in(earlier))
                .order_by(Command.id).limit(1)).first()
            if row:
                system.staff_change(row.reference)
                changed[system.system_id] = (row.reference, row.crm_id)
                done[system.system_id] = [*earlier, row.reference]
    marker.write_text(json.dumps(done, indent=2))
    deadline = time.monotonic() + 60   # file-exchange back offices publish on their next run
    while changed and not all(s.staff_changes_published() for s in systems):
        if time.monotonic() > deadline:
            raise SystemExit("[demo] a back office did not publish its staff change within 60 s")
        time.sleep(0.5)
    return changed


def print_table(summary: dict[str, dict[str, Any]]) -> None:
    width = max(len(s) for s in summary) if summary else 10
    header = f"{'system':<{width}}  " + "  ".join(f"{c:>{len(c)}}" for c in COLUMNS)
    print(header)
    print("-" * len(header))
    for system, figures in summary.items():
        print(f"{system:<{width}}  " + "  ".join(f"{figures.get(c, 0):>{len(c)}}" for c in COLUMNS))


def setup(**overrides: str) -> tuple[dict[str, str], dict[str, str], CrmDemo, list[DemoSystem]]:
    """Secrets, the environment for Airflow and the simulators, and the systems to run."""
    (HOME / "logs").mkdir(parents=True, exist_ok=True)
    names = ["crm_token", "crm_webhook_secret", "hub_api_token",
             *[n for cls in SYSTEMS for n in cls.secret_names()]]
    secrets = load_secrets(HOME / "secrets.json", names)
    env = {**base_env(), **overrides}
    os.environ.update({k: v for k, v in env.items() if k.startswith("HUB_")})   # simulators too
    return secrets, env, CrmDemo(HOME, secrets), [cls(HOME, secrets) for cls in SYSTEMS]


def start_systems(stack: Stack, systems: list[DemoSystem]) -> None:
    """Prepare each back office's storage and start its simulator processes."""
    for system in systems:
        system.prepare()
        for process in system.processes():
            stack.start(process)


def demo() -> int:
    started = time.monotonic()
    secrets, env, crm, systems = setup()

    from hub import reports
    from hub.ledger import db

    say("preparing the hub ledger (Alembic) and Airflow's metadata database")
    db.migrate()
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], cwd=REPO, check=True,
                   env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = reports.system_figures()

    with Stack(HOME / "logs") as stack:
        say("starting simulators: CRM and " + ", ".join(s.system_id for s in systems))
        stack.start(crm.process())
        start_systems(stack, systems)
        effects_before = {s.system_id: s.effects() for s in systems}
        env.update(airflow_env(crm, systems))
        say(f"CRM holds {crm.stats().get('cases', '?')} sample cases; running the DAGs in Airflow")
        run_airflow("deliver", env, systems)
        changed = staff_changes(systems, env)
        if changed:
            say("back-office staff changed one record in each system: "
                + ", ".join(f"{k} {v[0]}" for k, v in changed.items()) + "; syncing status")
        else:
            say("staff changes were made on an earlier run; syncing status again (expect nothing new)")
        run_airflow("sync", env, systems)
        after = reports.system_figures()
        delta = reports.difference(after, before)
        summary: dict[str, dict[str, Any]] = {}
        for system in systems:
            figures = dict(after.get(system.system_id, {}))
            figures["backoffice_effects"] = system.effects()
            this_run = dict(delta.get(system.system_id, {}))
            this_run["backoffice_effects"] = figures["backoffice_effects"] - effects_before[system.system_id]
            figures["this_run"] = this_run
            summary[system.system_id] = figures
        crm_stats = crm.stats()
    (HOME / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    print()
    print("Summary per back-office system (totals in the ledger; var/demo/summary.json):")
    print_table(summary)
    print()
    print("This run: " + "; ".join(
        f"{s}: {f['this_run'].get('sent', 0)} sent, {f['this_run'].get('backoffice_effects', 0)} "
        f"back-office changes, {f['this_run'].get('written_back', 0) + f['this_run'].get('updates_written_back', 0)} "
        "written back" for s, f in summary.items()))
    print(f"CRM: {crm_stats.get('writebacks_applied', '?')} write-backs applied in all.")
    # -- people's side: staff accounts for the hub's pages (see demo/accounts.py) --
    from demo import accounts as demo_accounts

    accounts_file = demo_accounts.ensure(HOME)
    say("staff accounts for the hub's pages (work desk, operations, MI) are in "
        f"{accounts_file}; `make up` serves the pages")
    say(f"done in {time.monotonic() - started:.0f} s; logs in {HOME / 'logs'}")
    return 0


def change_status() -> int:
    """After a demo: staff change one more record in each back office; sync twice; show that each
    change reached the CRM exactly once (the second sync brings nothing new)."""
    if not (HOME / "hub.db").exists():
        raise SystemExit("[demo] run `make demo` first")
    _, env, crm, systems = setup()
    from hub import reports

    report: dict[str, dict[str, Any]] = {}
    with Stack(HOME / "logs") as stack:
        stack.start(crm.process())
        start_systems(stack, systems)
        env.update(airflow_env(crm, systems))
        changed = staff_changes(systems, env, again=True)
        say("back-office staff changed: " + ", ".join(f"{k} {v[0]}" for k, v in changed.items()))
        syncs = []
        for _ in range(2):
            before = reports.system_figures()
            run_airflow("sync", env, systems)
            syncs.append(reports.difference(reports.system_figures(), before))
        for system, (reference, crm_id) in changed.items():
            updates = crm.updates(crm_id)
            report[system] = {
                "reference": reference, "crm_case": crm_id,
                "written_back_first_sync": syncs[0].get(system, {}).get("updates_written_back", 0),
                "written_back_second_sync": syncs[1].get(system, {}).get("updates_written_back", 0),
                "crm_status_updates_for_case": sum("status is now" in u.get("note", "") for u in updates)}
    (HOME / "status_change.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    print()
    print(f"{'system':<20} {'record':<16} {'CRM case':<12} {'1st sync':>8} {'2nd sync':>8} {'in CRM':>6}")
    for system, r in report.items():
        print(f"{system:<20} {r['reference']:<16} {r['crm_case']:<12} {r['written_back_first_sync']:>8} "
              f"{r['written_back_second_sync']:>8} {r['crm_status_updates_for_case']:>6}")
    say(f"written to {HOME / 'status_change.json'}")
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def up() -> int:
    """Keep the simulators, the hub web app and `airflow standalone` running until Ctrl-C."""
    # Stop cleanly on Ctrl-C or SIGTERM, even when started with SIGINT ignored (background job).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    secrets, env, crm, systems = setup(AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
                                       AIRFLOW__API__HOST="127.0.0.1", HUB_TASK_RETRIES="3")
    from hub.ledger import db

    db.migrate()
    web_port = int(os.environ.get("HUB_WEB_PORT", "8700"))
    with Stack(HOME / "logs") as stack:
        start_systems(stack, systems)
        env.update(airflow_env(crm, systems))
        env["CRM_WEBHOOK_SECRET"] = secrets["crm_webhook_secret"]
        env["HUB_API_TOKEN"] = secrets["hub_api_token"]
        env["HUB_AIRFLOW_API_URL"] = "http://127.0.0.1:8080"
        env["HUB_AIRFLOW_USERNAME"] = "admin"
        env["HUB_AIRFLOW_PASSWORD_FILE"] = str(HOME / "airflow" /
                                               "simple_auth_manager_passwords.json.generated")
        from hub.signals import redis_answers, redis_signal_env   # Redis signals, else REST

        redis_url = os.environ.get("HUB_SIGNAL_REDIS_URL", "redis://127.0.0.1:6379/0")
        if redis_answers(redis_url):
            env.update(redis_signal_env(redis_url))
        env.update(HUB_SMTP_HOST="127.0.0.1", HUB_SMTP_PORT=os.environ.get("HUB_DEMO_SMTP_PORT", "8725"),
                   HUB_ALERT_EMAIL="integration-support@council.example",
                   HUB_WEB_BASE_URL=f"http://127.0.0.1:{web_port}")
        stack.start(Process("hub-web", ["-m", "uvicorn", "hub.web.app:app", "--host", "127.0.0.1",
                                        "--port", str(web_port)], port=web_port, env=env))
        stack.start(crm.process(webhook_url=f"http://127.0.0.1:{web_port}/webhooks/crm"))
        stack.start(Process("airflow", ["-m", "airflow", "standalone"], port=8080, env=env),
                    ready_timeout=180)
        # -- people's side: a local SMTP sink for escalations and alerts, and the staff accounts --
        from demo import accounts as demo_accounts

        smtp_port = int(os.environ.get("HUB_DEMO_SMTP_PORT", "8725"))
        for part in ("tmp", "new", "cur"):   # a Maildir the sink writes each message into
            (HOME / "mail" / part).mkdir(parents=True, exist_ok=True)
        stack.start(Process("smtp-sink", ["-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
                                          "-c", "aiosmtpd.handlers.Mailbox", str(HOME / "mail")],
                            port=smtp_port))
        accounts_lines = demo_accounts.describe(demo_accounts.ensure(HOME),
                                                f"http://127.0.0.1:{web_port}")
        password_file = env["HUB_AIRFLOW_PASSWORD_FILE"]
        say("running. Airflow UI: http://127.0.0.1:8080 (user admin; password in "
            f"{password_file}); hub pages: http://127.0.0.1:{web_port}/; CRM simulator: {crm.base_url}")
        for line in accounts_lines:
            say(line)
        say(f"the same pages inside Airflow: http://127.0.0.1:8080/hub/ (Browse menu); "
            f"e-mails to teams land in {HOME / 'mail'}")
        say("press Ctrl-C to stop everything")
        try:
            while not stack.exited():
                time.sleep(2)
        except KeyboardInterrupt:
            say("stopping everything")
            return 0
        for process in stack.exited():
            say(f"{process.name} stopped by itself (exit {process.popen.returncode}); see "
                f"{HOME / 'logs' / (process.name + '.log')}; stopping everything")
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--up", action="store_true", help="keep everything running with the Airflow UI")
    parser.add_argument("--change-status", action="store_true",
                        help="after a demo: one staff change per back office, synced to the CRM once")
    args = parser.parse_args()
    if args.change_status:
        return change_status()
    return up() if args.up else demo()


if __name__ == "__main__":
    sys.exit(main())
