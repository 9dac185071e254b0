"""Run the Revenues simulator: ``python -m simulators.revenues --port 8101 --db /tmp/rev.db ...``.

Credentials come from ``--username``/``--password`` or the environment variables
``REVENUES_SIM_USERNAME`` / ``REVENUES_SIM_PASSWORD``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.revenues",
                                     description="Revenues back-office simulator (SOAP)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (created when missing)")
    parser.add_argument("--username", default=os.environ.get("REVENUES_SIM_USERNAME"))
    parser.add_argument("--password", default=os.environ.get("REVENUES_SIM_PASSWORD"))
    parser.add_argument("--seed-demo", action="store_true", help="load the demo accounts")
    parser.add_argument("--fault-delay", type=float, default=3.0,
                        help="seconds a 'timeout' fault holds the answer back")
    args = parser.parse_args(argv)
    if not args.username or not args.password:
        parser.error("--username and --password (or REVENUES_SIM_USERNAME/PASSWORD) are required")

    from simulators.revenues.app import create_app

    app = create_app(args.db, username=args.username, password=args.password,
                     seed_demo=args.seed_demo, fault_delay_seconds=args.fault_delay)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
