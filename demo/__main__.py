"""`make demo`: the hub end to end on its embedded default (simulators, SQLite, Airflow).

Starts the CRM and back-office simulators, prepares the ledger and Airflow's metadata database, loads
the sample CRM cases, runs the DAGs in real Airflow, makes one back-office staff change per system and
syncs it back, seeds one drift of each reconciliation class (once) and reconciles in Airflow, prints a summary per system and writes it to var/demo/summary.json. Everything it
starts is stopped before it exits. State is kept in var/demo/, so a second run shows that nothing is
applied twice. `--up` instead keeps the real stack running (Airflow's components on PostgreSQL,
supervised) for a person to explore; `--celery` runs the demo flow on that stack with Celery workers.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from demo.driver import Demo, default_home, say
from demo.stack import REPO, Stack
from demo.systems import airflow_env


def run_airflow(d: Demo, plan: str) -> list[dict[str, Any]]:
    """Run a plan's DAGs with ``dag.test()`` in a child process (``demo.airflow_runs``)."""
    argv = [sys.executable, "-m", "demo.airflow_runs", plan,
            "--systems", *[s.system_id for s in d.systems],
            "--asynchronous", *[s.system_id for s in d.systems if s.asynchronous]]
    log_path = d.home / "logs" / "airflow-runs.log"
    with open(log_path, "ab") as log:
        proc = subprocess.run(argv, cwd=REPO, env={**os.environ, **d.env}, stdout=subprocess.PIPE,
                              stderr=log, timeout=600)
    log_text = proc.stdout.decode("utf-8", "replace")
    with open(log_path, "a") as log:
        log.write(log_text)
    results = [json.loads(line.split(" ", 1)[1]) for line in log_text.splitlines()
               if line.startswith("DEMO-RESULT ")]
    for result in results:
        say(f"  Airflow DAG run {result.get('dag_id')}: {result.get('state')} "
            f"({result.get('seconds')} s)")
    if proc.returncode != 0:
        raise SystemExit(f"[demo] a DAG run failed (exit {proc.returncode}); see {log_path}")
    return results


def demo() -> int:
    started = time.monotonic()
    d = Demo(default_home("demo"))
    d.setup()

    from hub import reports
    from hub.ledger import db

    say("preparing the hub ledger (Alembic) and Airflow's metadata database")
    db.migrate()
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], cwd=REPO, check=True,
                   env={**os.environ, **d.env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = reports.system_figures()

    with Stack(d.home / "logs") as stack:
        say("starting simulators: CRM and " + ", ".join(s.system_id for s in d.systems))
        stack.start(d.crm.process())
        d.start_systems(stack)
        effects_before = {s.system_id: s.effects() for s in d.systems}
        d.env.update(airflow_env(d.crm, d.systems))
        say(f"CRM holds {d.crm.stats().get('cases', '?')} sample cases; running the DAGs in Airflow")
        run_airflow(d, "deliver")
        changed = d.staff_changes()
        if changed:
            say("back-office staff changed one record in each system: "
                + ", ".join(f"{k} {v[0]}" for k, v in changed.items()) + "; syncing status")
        else:
            say("staff changes were made on an earlier run; syncing status again (expect nothing new)")
        run_airflow(d, "sync")
        from demo import reconciliation

        after_run = reconciliation.last_run_id()
        reconciliation.seed_once(d)
        say("reconciling the CRM, the ledger and each back office in Airflow")
        run_airflow(d, "reconcile")
        rec = reconciliation.report(after_run)
        summary = d.summarise(before, effects_before)
        crm_stats = d.crm.stats()
    d.print_summary(summary, crm_stats, reconciliation={
        k: rec[k] for k in ("found", "healed", "work_items", "known")})
    reconciliation.print_report(rec)
    # -- people's side: staff accounts for the hub's pages (see demo/accounts.py) --
    from demo import accounts as demo_accounts

    accounts_file = demo_accounts.ensure(d.home)
    say("staff accounts for the hub's pages (work desk, operations, MI) are in "
        f"{accounts_file}; `make up` serves the pages")
    say(f"done in {time.monotonic() - started:.0f} s; logs in {d.home / 'logs'}")
    return 0


def change_status() -> int:
    """After a demo: staff change one more record in each back office; sync twice; show that each
    change reached the CRM exactly once (the second sync brings nothing new)."""
    d = Demo(default_home("demo"))
    if not (d.home / "hub.db").exists():
        raise SystemExit("[demo] run `make demo` first")
    d.setup()
    from hub import reports

    report: dict[str, dict[str, Any]] = {}
    with Stack(d.home / "logs") as stack:
        stack.start(d.crm.process())
        d.start_systems(stack)
        d.env.update(airflow_env(d.crm, d.systems))
        changed = d.staff_changes(again=True)
        say("back-office staff changed: " + ", ".join(f"{k} {v[0]}" for k, v in changed.items()))
        syncs = []
        for _ in range(2):
            before = reports.system_figures()
            run_airflow(d, "sync")
            syncs.append(reports.difference(reports.system_figures(), before))
        for system, (reference, crm_id) in changed.items():
            updates = d.crm.updates(crm_id)
            report[system] = {
                "reference": reference, "crm_case": crm_id,
                "written_back_first_sync": syncs[0].get(system, {}).get("updates_written_back", 0),
                "written_back_second_sync": syncs[1].get(system, {}).get("updates_written_back", 0),
                "crm_status_updates_for_case": sum("status is now" in u.get("note", "") for u in updates)}
    (d.home / "status_change.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    print()
    print(f"{'system':<20} {'record':<16} {'CRM case':<12} {'1st sync':>8} {'2nd sync':>8} {'in CRM':>6}")
    for system, r in report.items():
        print(f"{system:<20} {r['reference']:<16} {r['crm_case']:<12} {r['written_back_first_sync']:>8} "
              f"{r['written_back_second_sync']:>8} {r['crm_status_updates_for_case']:>6}")
    say(f"written to {d.home / 'status_change.json'}")
    return 0


def port(value: str) -> int:
    number = int(value)
    if not 0 <= number < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0 picks a free one)")
    return number


def stack_name(value: str) -> str:
    from demo.postgres import NAME

    if not NAME.match(value) or len(value) > 40:
        raise argparse.ArgumentTypeError(f"{value!r}: use up to 40 lower-case letters, digits and _ "
                                         "(it names PostgreSQL databases and a Celery queue)")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--up", action="store_true",
                      help="keep the real stack running (Airflow on PostgreSQL, supervised)")
    mode.add_argument("--celery", action="store_true",
                      help="run the demo flow on the real stack with the CeleryExecutor, then stop")
    mode.add_argument("--change-status", action="store_true",
                      help="after a demo: one staff change per back office, synced to the CRM once")
    stack = parser.add_argument_group("real stack (--up, --celery)")
    stack.add_argument("--executor", choices=["local", "celery"], default=None,
                       help="Airflow executor for --up (default local; --celery implies celery)")
    stack.add_argument("--name", type=stack_name, default=None,
                       help="PostgreSQL database prefix and Celery queue (default hub for --up, "
                            "hub_celery for --celery)")
    stack.add_argument("--api-port", type=port, default=None,
                       help="Airflow API server and UI (--up: 8080; --celery: a free port; 0: free)")
    stack.add_argument("--web-port", type=port, default=None,
                       help="hub web app (--up: HUB_WEB_PORT or 8700; 0: free)")
    stack.add_argument("--smtp-port", type=port, default=None,
                       help="SMTP sink for e-mails to teams and alerts (--up: HUB_DEMO_SMTP_PORT "
                            "or 8725; --celery: a free port; 0: free)")
    stack.add_argument("--systems", nargs="+", default=None, help="only these back offices")
    stack.add_argument("--no-seed", action="store_true", help="start the CRM without demo cases")
    stack.add_argument("--no-webhooks", action="store_true",
                       help="--up: the CRM does not push new cases to the hub (intake pulls them)")
    stack.add_argument("--worker-concurrency", type=int, default=2,
                       help="task slots of each of the two Celery workers (default 2)")
    args = parser.parse_args()
    if args.change_status:
        return change_status()
    if not (args.up or args.celery):
        return demo()
    from demo.realstack import StackOptions, demo_celery, up

    if args.celery:
        options = StackOptions(home=default_home("celery"), name=args.name or "hub_celery",
                               executor="celery", api_port=0 if args.api_port is None else args.api_port,
                               web=False, webhooks=False, systems=args.systems,
                               seed=not args.no_seed, worker_concurrency=args.worker_concurrency,
                               smtp_port=args.smtp_port or 0)
        return demo_celery(options)
    options = StackOptions(home=default_home("up"), name=args.name or "hub",
                           executor=args.executor or "local",
                           api_port=8080 if args.api_port is None else args.api_port,
                           web_port=int(os.environ.get("HUB_WEB_PORT", "8700"))
                           if args.web_port is None else args.web_port,
                           systems=args.systems, seed=not args.no_seed,
                           webhooks=not args.no_webhooks,
                           worker_concurrency=args.worker_concurrency,
                           smtp_port=int(os.environ.get("HUB_DEMO_SMTP_PORT", "8725"))
                           if args.smtp_port is None else args.smtp_port)
    return up(options)


if __name__ == "__main__":
    sys.exit(main())
