"""`hub`: operator commands (ledger migrations and checks, figures, work items, re-mapping,
retention, restores, reconciliation)."""
from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy import update


def _upgrade(args: argparse.Namespace) -> int:
    from hub.ledger import db

    db.migrate()
    print("ledger schema is up to date")
    return 0


def _check(args: argparse.Namespace) -> int:
    """Exit 0 when the ledger is consistent, 1 with the findings when it is not."""
    from hub.ledger import consistency

    report = consistency.check()
    if args.json:
        print(json.dumps({"consistent": report.consistent, "revision": report.revision,
                          "head": report.head, "counts": report.counts,
                          "findings": [vars(f) | {"ids": list(f.ids)} for f in report.findings]},
                         indent=2))
    else:
        for finding in report.findings:
            print(finding)
        if report.consistent:
            print(f"ledger consistent at revision {report.revision}: "
                  + ", ".join(f"{n} {t}" for t, n in report.counts.items()))
    return 0 if report.consistent else 1


def _restored(args: argparse.Namespace) -> int:
    """After restoring a backup, before the stack starts: see hub.ledger.restore."""
    from hub.ledger import restore

    def pull() -> int:
        from hub import connections, intake

        pulled = intake.pull_from_crm(connections.crm_client())
        intake.map_received()
        return pulled

    stats = restore.after_restore(id_gap=args.id_gap, pull=None if args.no_pull else pull)
    for table, start in stats.sequences.items():
        print(f"{table}: next id {start}")
    print(f"{stats.released} commands caught mid-send released; {stats.marked} unsettled commands "
          "will be looked up in their back office before any create"
          + ("" if stats.pulled is None else f"; {stats.pulled} cases read again from the CRM"))
    return _check(argparse.Namespace(json=False))


def _connections(args: argparse.Namespace) -> int:
    """Each Connection the hub uses: defined, readable? Exit 1 if one is invalid or required and
    missing. Values are never printed."""
    from hub.connections import connection_report

    failed = False
    for status in connection_report():
        line = f"{status.conn_id}: {status.state}"
        if status.detail:
            line += f" ({status.detail})"
        if status.state == "missing":
            required = status.conn_id in args.require
            failed |= required
            line += (" and required" if required else
                     ": its DAGs fail until it is defined; pause them if this council does not use it")
        failed |= status.state == "invalid"
        print(line)
    return 1 if failed else 0


def _systems(args: argparse.Namespace) -> int:
    """Every registered instance with its figures and last connection check; ``--check`` first
    checks each (or the named ones) and stores the results (exit 1 when one fails)."""
    from hub import systems

    failed = False
    if args.check is not None:
        try:
            results = systems.check_all(args.check or None)
        except KeyError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
        for result in results:
            failed |= not result.ok
            print(f"{result.system}: " + ("ok" if result.ok else
                  f"failed {result.error_class} {result.code or ''}: {result.message}")
                  + f" ({result.duration_ms} ms)", file=sys.stderr)
    print(json.dumps(systems.overview(), indent=2))
    return 1 if failed else 0


def _new_connector(args: argparse.Namespace) -> int:
    """Write a new back-office system from the scaffold and register it as an instance."""
    from pathlib import Path

    from hub.scaffold import ScaffoldError, new_connector

    root = Path(args.root) if args.root else None
    try:
        written = new_connector(args.domain, args.system, transport=args.transport,
                                **({"root": root} if root else {}), title=args.title)
    except ScaffoldError as exc:
        print(f"hub new-connector: {exc}", file=sys.stderr)
        return 2
    counted = [w for w in written if w.counted]
    for w in written:
        print(f"{w.path}  {w.lines} lines" + ("" if w.counted else "  (not counted)"))
    print(f"{len(counted)} files, {sum(w.lines for w in counted)} lines outside the simulator; "
          f"registered {args.domain}_{args.system} in the instances file. Next: fill the "
          "TODO(vendor) lines, then run the contract test.")
    return 0


def _work_items(args: argparse.Namespace) -> int:
    from hub import workitems
    from hub.ledger.db import session_scope

    with session_scope() as session:
        for item in workitems.list_work_items(session, team=args.team):
            print(f"#{item.id} [{item.team}] {item.kind}: {item.reason}")
    return 0


def _remap(args: argparse.Namespace) -> int:
    """Send invalid cases of a case type through mapping again (after the mapping or data is fixed)."""
    from hub import intake
    from hub.ledger.db import session_scope
    from hub.ledger.models import Case, CaseState

    with session_scope() as session:
        query = update(Case).where(Case.state == CaseState.INVALID.value)
        if args.case_type:
            query = query.where(Case.case_type == args.case_type)
        count = session.execute(query.values(state=CaseState.RECEIVED.value, error=None)
                                .execution_options(synchronize_session=False)).rowcount
    stats = intake.map_received()
    print(f"{count} invalid cases re-mapped: {stats.mapped} mapped, {stats.invalid} still invalid")
    return 0


def _purge(args: argparse.Namespace) -> int:
    from hub import retention

    stats = retention.purge_personal_data(days=args.days)
    print(f"blanked personal data of {stats.cases} cases, {stats.commands} commands, "
          f"{stats.inbound} unreadable deliveries")
    return 0


def _users(args: argparse.Namespace) -> int:
    """Staff accounts for the hub's pages: add, disable, enable, reset-password, list."""
    from hub import accounts
    from hub.ledger.db import session_scope

    actor = f"cli:{args.actor}"
    try:
        with session_scope() as session:
            if args.action == "list":
                for a in accounts.list_accounts(session):
                    state = "disabled" if a.disabled else "active"
                    print(f"{a.username:<24} {a.role:<10} {a.teams or '-':<30} {state}")
                return 0
            if args.action == "add":
                password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
                account, password = accounts.add_account(
                    session, username=args.username, role=args.role, teams=args.team or [],
                    display_name=args.name, password=password, actor=actor)
                print(f"added {account.username} ({account.role}; teams {account.teams or '-'})")
                if not args.password_stdin:
                    print(f"one-time password: {password}")
                print("they choose their own password when they first sign in")
            elif args.action == "disable":
                accounts.disable(session, args.username, actor=actor)
                print(f"{args.username} is disabled; their sessions have ended")
            elif args.action == "enable":
                accounts.enable(session, args.username, actor=actor)
                print(f"{args.username} is enabled")
            elif args.action == "reset-password":
                password = accounts.reset_password(session, args.username, actor=actor)
                print(f"one-time password for {args.username}: {password}")
                print("their sessions have ended; they choose a new password when they sign in")
    except accounts.AccountError as exc:
        print(f"hub users {args.action}: {exc}", file=sys.stderr)
        return 2
    return 0


def _escalate(args: argparse.Namespace) -> int:
    from hub import escalation

    stats = escalation.escalate_overdue()
    print(f"{stats.items} overdue work items escalated in {stats.emails} e-mails"
          + (f"; {stats.failed_teams} teams could not be e-mailed (will retry)" if stats.failed_teams else ""))
    return 1 if stats.failed_teams else 0


def _reconcile(args: argparse.Namespace) -> int:
    """Reconcile the CRM, the ledger and each back office (one system, or every one)."""
    from connectors import catalog
    from connectors.errors import ConnectorError
    from hub.reconcile import engine

    systems = [args.system] if args.system else sorted(catalog.SYSTEMS)
    if args.system and args.system not in catalog.SYSTEMS:
        print(f"unknown system {args.system!r}; known: {', '.join(sorted(catalog.SYSTEMS))}",
              file=sys.stderr)
        return 2
    status = 0
    for system in systems:
        try:
            report = engine.reconcile_configured(system, dry_run=args.dry_run, run_id="cli")
        except ConnectorError as exc:
            print(f"{system}: run failed ({type(exc).__name__} {exc.code or ''})".rstrip())
            status = 1
            continue
        found = ", ".join(f"{code} {n}" for code, n in sorted(report.found.items())) or "nothing"
        print(f"{system}: run {report.run} {report.status}{' (dry run)' if args.dry_run else ''}: "
              f"compared {report.compared.get('ledger', 0)} ledger, "
              f"{report.compared.get('backoffice', 0)} back-office, "
              f"{report.compared.get('crm', 0)} CRM; found {found} "
              f"({sum(report.new.values())} new); healed {report.healed}; "
              f"work items opened {report.work_items}"
              + (f"; note: {report.error}" if report.error else ""))
    return status


def main(argv: list[str] | None = None) -> int:
    from hub.ledger.restore import DEFAULT_ID_GAP

    parser = argparse.ArgumentParser(prog="hub", description=__doc__)
    parser.add_argument("--env-file", metavar="FILE",
                        help="read settings (KEY=value lines: HUB_DATABASE_URL, AIRFLOW_CONN_*...) "
                             "from FILE first, over the environment; `make up` writes var/up/hub.env")
    sub = parser.add_subparsers(required=True)
    sub.add_parser("upgrade", help="apply ledger migrations").set_defaults(run=_upgrade)
    check = sub.add_parser("check", help="is the ledger consistent? (exit 1 with findings)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(run=_check)
    restored = sub.add_parser("restored", help="after restoring a ledger backup, before starting")
    restored.add_argument("--id-gap", type=int, default=DEFAULT_ID_GAP,
                          help="how far past the highest id each sequence jumps (PostgreSQL)")
    restored.add_argument("--no-pull", action="store_true",
                          help="do not read the CRM again from the restored cursor")
    restored.set_defaults(run=_restored)
    conns = sub.add_parser("connections", help="are the Airflow Connections defined and readable?")
    conns.add_argument("--require", action="append", default=[], metavar="CONN_ID",
                       help="fail when this Connection is missing (repeatable)")
    conns.set_defaults(run=_connections)
    systems_cmd = sub.add_parser("systems", help="every instance: figures and last connection check")
    systems_cmd.add_argument("--check", nargs="*", metavar="SYSTEM",
                             help="check the connection of these instances (all without a name) "
                                  "first and keep the results")
    systems_cmd.set_defaults(run=_systems)
    scaffold = sub.add_parser("new-connector", help="write a new back-office system that passes "
                                                    "the contract suite, with TODOs for the vendor")
    scaffold.add_argument("domain")
    scaffold.add_argument("system")
    scaffold.add_argument("--transport", choices=["rest", "soap", "sftp", "sql"], default="rest",
                          help="the back office's transport (docs/connectors.md: what each costs)")
    scaffold.add_argument("--title", help="the system's name for people")
    scaffold.add_argument("--root", help="the tree to write into (default: this repository)")
    scaffold.set_defaults(run=_new_connector)
    items = sub.add_parser("work-items", help="open work items")
    items.add_argument("--team")
    items.set_defaults(run=_work_items)
    remap = sub.add_parser("remap-invalid", help="map invalid cases again after a fix")
    remap.add_argument("--case-type")
    remap.set_defaults(run=_remap)
    purge = sub.add_parser("purge", help="blank personal data past the retention period")
    purge.add_argument("--days", type=int)
    purge.set_defaults(run=_purge)
    users = sub.add_parser("users", help="staff accounts for the hub's pages")
    users.set_defaults(run=_users, actor="operator")
    user_actions = users.add_subparsers(dest="action", required=True)
    user_actions.add_parser("list", help="every account")
    add = user_actions.add_parser("add", help="add an account; prints a one-time password")
    add.add_argument("username")
    add.add_argument("--role", choices=["member", "operations", "admin"], default="member")
    add.add_argument("--team", action="append",
                     help="a team whose work items they see (repeat for several)")
    add.add_argument("--name", help="full name shown on the pages")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the first password from standard input instead of generating one")
    for action, text in (("disable", "stop an account signing in; ends its sessions"),
                         ("enable", "let a disabled account sign in again"),
                         ("reset-password", "a new one-time password; ends its sessions")):
        user_actions.add_parser(action, help=text).add_argument("username")
    desk = sub.add_parser("escalate-overdue",
                          help="e-mail each team its overdue work items (once per item)")
    desk.set_defaults(run=_escalate)
    recon = sub.add_parser("reconcile", help="compare the CRM, the ledger and the back offices; "
                                             "heal what is safe, work items for the rest")
    recon.add_argument("--system", help="one system id (default: every system)")
    recon.add_argument("--dry-run", action="store_true", help="report only: heal nothing, "
                                                             "open no work item")
    recon.set_defaults(run=_reconcile)
    args = parser.parse_args(argv)
    if args.env_file:
        from hub import envfile

        try:
            envfile.load(args.env_file)
        except envfile.EnvFileError as exc:
            print(f"--env-file: {exc}", file=sys.stderr)
            return 2
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
