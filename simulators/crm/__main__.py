"""Run the CRM simulator: ``python -m simulators.crm --port 8101 --db var/crm.sqlite``."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from simulators.crm.app import create_app


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators.crm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (created if missing)")
    parser.add_argument("--seed-demo", action="store_true", help="load the demo cases")
    parser.add_argument("--webhook-url", default=None,
                        help="push changed cases here, signed with env CRM_WEBHOOK_SECRET")
    parser.add_argument("--token", default=None,
                        help="API bearer token (default: env CRM_SIM_TOKEN)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    token = args.token or os.environ.get("CRM_SIM_TOKEN", "")
    if not token:
        print("a token is required: --token or env CRM_SIM_TOKEN", file=sys.stderr)
        return 2
    secret = os.environ.get("CRM_WEBHOOK_SECRET", "").encode() or None
    if args.webhook_url and not secret:
        print("--webhook-url needs env CRM_WEBHOOK_SECRET", file=sys.stderr)
        return 2
    app = create_app(args.db, token=token, webhook_url=args.webhook_url, webhook_secret=secret,
                     seed_demo=args.seed_demo)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
