"""Run the Benefits simulator: an SFTP server over a folder plus the back office's batch job.

    BENEFITS_SIM_USERNAME=academy BENEFITS_SIM_PASSWORD=... \\
    python -m simulators.benefits --host 127.0.0.1 --port 2222 --root var/benefits --db var/benefits.db \\
        --seed-demo

Writes the server's known_hosts line to ``--known-hosts-out`` (default next to the database) so the
connector can be configured with ``known_hosts_path``.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import paramiko

from simulators.benefits.backoffice import BenefitsBackOffice
from simulators.benefits.sample import claims
from simulators.benefits.sftp_server import SftpFolderServer

log = logging.getLogger("simulators.benefits")


def _host_key(path: Path) -> paramiko.PKey:
    """The server's host key, created on first start and kept so known_hosts stays valid."""
    if path.exists():
        return paramiko.RSAKey.from_private_key_file(str(path))
    key = paramiko.RSAKey.generate(2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    key.write_private_key_file(str(path))
    os.chmod(path, 0o600)
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.benefits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2222)
    parser.add_argument("--root", type=Path, required=True, help="exchange folder (SFTP root)")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file of the back office")
    parser.add_argument("--seed-demo", action="store_true", help="load the demo claims")
    parser.add_argument("--known-hosts-out", type=Path, help="where to write the known_hosts line")
    parser.add_argument("--host-key", type=Path, help="host key file (created if missing)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between batch runs")
    parser.add_argument("--response-delay", type=float, default=0.0,
                        help="seconds before any answer is written")
    parser.add_argument("--late-fraction", type=float, default=0.0,
                        help="share of records answered late (an extra --late-delay seconds)")
    parser.add_argument("--late-delay", type=float, default=600.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    username = os.environ.get("BENEFITS_SIM_USERNAME", "academy")
    password = os.environ.get("BENEFITS_SIM_PASSWORD")
    if not password:
        print("set BENEFITS_SIM_PASSWORD (and optionally BENEFITS_SIM_USERNAME)", file=sys.stderr)
        return 2

    args.db.parent.mkdir(parents=True, exist_ok=True)
    backoffice = BenefitsBackOffice(args.root, args.db, response_delay_seconds=args.response_delay,
                                    late_fraction=args.late_fraction,
                                    late_delay_seconds=args.late_delay)
    backoffice.setup()
    if args.seed_demo:
        log.info("seeded %d claims", backoffice.seed(claims()))

    key = _host_key(args.host_key or args.db.parent / "benefits_sim_host_key")
    server = SftpFolderServer(args.root, host=args.host, port=args.port, username=username,
                              password=password, host_key=key)
    server.start()
    known_hosts = args.known_hosts_out or args.db.parent / "benefits_sim_known_hosts"
    known_hosts.write_text(server.known_hosts_line() + "\n")
    log.info("benefits simulator on %s:%s, known_hosts in %s", args.host, server.port, known_hosts)

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stop.is_set():
            report = backoffice.process()
            if report.files or report.answers_written:
                log.info("batch run: %d files, %d records (%d duplicates), %d lines written",
                         report.files, report.records, report.duplicates, report.answers_written)
            stop.wait(args.interval)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
