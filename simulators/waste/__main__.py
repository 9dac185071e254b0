"""Run the waste simulator: ``python -m simulators.waste --port 8084 --db waste.db --seed-demo``."""
from __future__ import annotations

import argparse
import os

import uvicorn

from simulators.waste.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators.waste", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8084)
    parser.add_argument("--db", default="waste-sim.db", help="SQLite file for the simulator's state")
    parser.add_argument("--username", default=os.environ.get("WASTE_SIM_USERNAME", "hub"))
    parser.add_argument("--password", default=os.environ.get("WASTE_SIM_PASSWORD"))
    parser.add_argument("--seed-demo", action="store_true", help="load demo premises and slots")
    args = parser.parse_args(argv)
    if not args.password:
        parser.error("--password or WASTE_SIM_PASSWORD is required")
    app = create_app(args.db, username=args.username, password=args.password,
                     seed_demo=args.seed_demo)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
