"""CLI: ``python -m simulators.licensing --url URL [--seed-demo] [--decide-pending]``.

Installs the licensing schema at URL (idempotent), optionally seeds the demo premises, decides
every pending application as a licensing officer would, and prints a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import sys

from simulators.licensing.backoffice import DECISIONS, LicensingBackOffice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.licensing", description=__doc__)
    parser.add_argument("--url", required=True, help="SQLAlchemy database URL")
    parser.add_argument("--seed-demo", action="store_true", help="add the demo premises list")
    parser.add_argument("--decide-pending", action="store_true",
                        help="decide every RECEIVED application (most granted)")
    parser.add_argument("--decide", metavar="APP_REF=DECISION", action="append", default=[],
                        help=f"decide one application ({', '.join(DECISIONS)})")
    args = parser.parse_args(argv)
    office = LicensingBackOffice(args.url)
    try:
        office.install()
        summary: dict[str, object] = {}
        if args.seed_demo:
            summary["premises_added"] = office.seed_reference()
        decided = []
        for item in args.decide:
            ref, _, decision = item.partition("=")
            office.decide(ref, decision.upper())
            decided.append([ref, decision.upper()])
        if args.decide_pending:
            decided += [list(d) for d in office.decide_pending()]
        summary["decided"] = decided
        summary["applications"] = office.applications_created()
    finally:
        office.close()
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
