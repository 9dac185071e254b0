"""Run the housing repairs simulator:
``python -m simulators.housing --port 8085 --db housing.db --seed-demo`` (secret in
``HOUSING_SIM_CLIENT_SECRET``)."""
from __future__ import annotations

import os

from simulators.housing.app import create_app
from simulators.kit import run, secret_argument, simulator_parser


def main(argv: list[str] | None = None) -> None:
    parser = simulator_parser("python -m simulators.housing", __doc__, default_port=8085,
                              default_db="housing-sim.db")
    parser.add_argument("--client-id", default=os.environ.get("HOUSING_SIM_CLIENT_ID", "hub"))
    parser.add_argument("--client-secret", default=None)
    args = parser.parse_args(argv)
    secret = secret_argument(parser, "--client-secret", "HOUSING_SIM_CLIENT_SECRET", args)
    run(create_app(args.db, client_id=args.client_id, client_secret=secret,
                   seed_demo=args.seed_demo), args.host, args.port)


if __name__ == "__main__":
    main()
