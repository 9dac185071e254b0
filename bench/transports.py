"""Deliverable 6: the transports on their own.

- SFTP: ``upload_verified`` of one large batch file (write to a temporary name, read back and
  compare byte for byte, rename) against OpenSSH's own ``sftp`` client putting the same file to the same sshd.
- Licensing: applications written per second by the licensing connector on PostgreSQL and
  MariaDB, against the same rows inserted with ``executemany`` (bare) on the same server.
- SOAP: client-side cost per call (build the request, parse the answer) with zeep, against a canned
  answer, so the network and the back office are not in the figure.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from pathlib import Path

from bench.report import Figure
from bench.sizes import Size
from bench.systems import LicensingSystem, timed

SFTP_TARGET = 0.5


def run(size: Size, runs: int, workdir: Path) -> list[Figure]:
    workdir.mkdir(parents=True, exist_ok=True)
    return [*_sftp(size, runs, workdir), *_licensing(size, runs, workdir), *_soap(size, runs)]


# -- SFTP -----------------------------------------------------------------------------------------
def _sftp(size: Size, runs: int, workdir: Path) -> list[Figure]:
    from connectors.transports import sftp
    from tests.support.sshd import ensure_sshd, start_sshd

    megabytes = size.sftp_megabytes
    figure = Figure("6", f"SFTP upload_verified, {megabytes} MB file", "MB/s",
                    anchor="OpenSSH sftp put, same file and server", target=SFTP_TARGET,
                    note="write to a temporary name, read back and compare, rename")
    reason = ensure_sshd()
    if reason:
        figure.note = f"not measured: {reason}"
        return [figure]
    server = start_sshd(workdir / "sshd")
    try:
        root = workdir / "sftp-root"
        root.mkdir()
        server.use_root(root)
        data = os.urandom(megabytes * 2 ** 20)
        source = workdir / "batch.dat"
        source.write_bytes(data)
        settings = sftp.SftpSettings(host=server.host, port=server.port, username=server.username,
                                     private_key_path=str(server.client_key_path),
                                     known_hosts_path=str(server.known_hosts_path), timeout=60)
        for number in range(runs):
            with timed() as openssh:
                subprocess.run(
                    ["sftp", "-q", "-b", "-", "-P", str(server.port), "-i",
                     str(server.client_key_path), "-o", f"UserKnownHostsFile={server.known_hosts_path}",
                     "-o", "BatchMode=yes", f"{server.username}@{server.host}"],
                    input=f"put {source} openssh-{number}.dat\n".encode(), check=True,
                    capture_output=True, timeout=600)
            with timed() as hub:
                with sftp.connect(settings) as session:
                    session.upload_verified(data, f".hub-{number}.dat.part", f"hub-{number}.dat")
            assert hashlib.sha256((root / f"hub-{number}.dat").read_bytes()).digest() == \
                hashlib.sha256(data).digest()
            figure.add(megabytes / hub.seconds, megabytes / openssh.seconds)
            for name in (f"hub-{number}.dat", f"openssh-{number}.dat"):
                (root / name).unlink()
    finally:
        server.stop()
    return [figure]


# -- licensing ------------------------------------------------------------------------------------
def _licensing(size: Size, runs: int, workdir: Path) -> list[Figure]:
    from bench.cases import mixed_cases
    from connectors.base import Command
    from hub.intake import default_mappings
    from tests.support.databases import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL

    mappings = default_mappings()
    commands: list[Command] = []
    n = 0
    while len(commands) < size.licensing_rows:
        for case in mixed_cases(200, prefix=f"LIC{n}"):
            if case.case_type == "licence_application":
                commands += mappings.apply(case.case_type, case.crm_id, 1, case.data)
        n += 1
    commands = commands[:size.licensing_rows]
    figures = []
    for label, admin in (("PostgreSQL", POSTGRES_ADMIN_URL), ("MariaDB", MARIADB_ADMIN_URL)):
        figure = Figure("6", f"licensing applications written, {label}", "rows/s",
                        anchor="same rows by executemany, same server",
                        note=f"{len(commands)} applications in batches of {size.batch_size}")
        try:
            for _ in range(runs):
                with contextlib.ExitStack() as stack:
                    system = LicensingSystem(stack, admin)
                    connector = system.connector()
                    with timed() as hub:
                        outcomes = []
                        for start in range(0, len(commands), size.batch_size):
                            outcomes += connector.submit(commands[start:start + size.batch_size])
                    prepared = system.prepare_bare()
                    with timed() as bare:
                        system.run_bare(prepared)
                    written = sum(o.status.value == "confirmed" for o in outcomes)
                    figure.add(written / hub.seconds, written / bare.seconds)
        except Exception as exc:  # noqa: BLE001 - a missing server is reported, not fatal
            figure.note = f"not measured: {type(exc).__name__}: {str(exc)[:80]}"
        figures.append(figure)
    return figures


# -- SOAP -----------------------------------------------------------------------------------------
def _soap(size: Size, runs: int) -> list[Figure]:
    from bench.soap_items import measure

    figures: dict[str, Figure] = {}
    for _ in range(runs):
        for name, (value, anchor, note) in measure(size.soap_calls).items():
            figure = figures.setdefault(name, Figure(
                "6", name, "calls/s", anchor=anchor[0] if anchor else None, note=note))
            figure.add(value, anchor[1] if anchor else None)
    return list(figures.values())
