"""The demo's in-process SFTP server and the simulator CLI, driven by the real connector."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paramiko
import pytest

from connectors.base import Command, OutcomeStatus
from connectors.benefits.academy import AcademyConfig, AcademyConnector
from connectors.errors import PermanentError
from simulators.benefits.backoffice import BenefitsBackOffice
from simulators.benefits.sample import claims
from simulators.benefits.sftp_server import SftpFolderServer
from simulators.serving import free_port

REPO = Path(__file__).resolve().parents[3]
COMMAND = Command(key="cmd-demo-1", system="benefits_academy", operation="hb.income_change",
                  case_ref="CRM-000001",
                  payload={"claim_ref": "HB0000003", "effective_from": "2026-02-16",
                           "income_type": "earnings", "amount": "210.40", "frequency": "weekly"})


@pytest.fixture(scope="module")
def host_key() -> paramiko.PKey:
    return paramiko.RSAKey.generate(2048)


@pytest.fixture
def served(tmp_path: Path, host_key: paramiko.PKey) -> Iterator[tuple[SftpFolderServer, BenefitsBackOffice]]:
    office = BenefitsBackOffice(tmp_path / "root", tmp_path / "bo.db")
    office.setup()
    office.seed(claims())
    server = SftpFolderServer(office.root, host="127.0.0.1", port=0, username="academy",
                              password="demo-pass", host_key=host_key)
    server.start()
    try:
        yield server, office
    finally:
        server.stop()


def _config(server: SftpFolderServer, password: str = "demo-pass") -> AcademyConfig:
    return AcademyConfig(host="127.0.0.1", port=server.port, username="academy", password=password,
                         host_key=server.known_hosts_line(), timeout_seconds=5, retry_attempts=1)


def test_connector_round_trip_over_the_demo_server(served) -> None:  # type: ignore[no-untyped-def]
    server, office = served
    connector = AcademyConnector(_config(server))
    connector.check()
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    [outcome] = connector.submit([COMMAND])
    assert outcome.status is OutcomeStatus.AWAITING
    office.process()
    [answer] = connector.fetch_updates(since)
    assert (answer.key, answer.resolves, answer.reference) == \
        (COMMAND.key, OutcomeStatus.CONFIRMED, "HB0000003")
    assert connector.fetch_updates(answer.changed_at) == []
    archived = [p.name for p in office.archive.iterdir() if not p.name.startswith(".")]
    assert len(archived) == 1 and list(office.outbound.iterdir()) == []


def test_wrong_password_is_permanent(served) -> None:  # type: ignore[no-untyped-def]
    server, _ = served
    with pytest.raises(PermanentError) as info:
        AcademyConnector(_config(server, password="wrong")).check()
    assert info.value.code == "auth-failed"


def test_paths_cannot_escape_the_root(served) -> None:  # type: ignore[no-untyped-def]
    server, office = served
    (office.root.parent / "secret.txt").write_text("x")
    transport = paramiko.Transport(("127.0.0.1", server.port))
    try:
        transport.connect(hostkey=server.host_key, username="academy", password="demo-pass")
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        assert "secret.txt" not in sftp.listdir("../..")
        with pytest.raises(OSError):
            sftp.open("../secret.txt").read()
    finally:
        transport.close()


def test_cli_serves_processes_and_writes_known_hosts(tmp_path: Path) -> None:
    port = free_port()
    known_hosts = tmp_path / "known_hosts"
    env = {**os.environ, "BENEFITS_SIM_USERNAME": "academy", "BENEFITS_SIM_PASSWORD": "cli-pass"}
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.benefits", "--host", "127.0.0.1", "--port", str(port),
         "--root", str(tmp_path / "root"), "--db", str(tmp_path / "bo.db"), "--seed-demo",
         "--known-hosts-out", str(known_hosts), "--interval", "0.2"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not known_hosts.exists():
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.1)
        connector = AcademyConnector(AcademyConfig(
            host="127.0.0.1", port=port, username="academy", password="cli-pass",
            known_hosts_path=str(known_hosts), timeout_seconds=5))
        since = datetime.now(timezone.utc) - timedelta(seconds=5)
        connector.submit([COMMAND])
        answers: list = []
        while not answers:
            assert time.monotonic() < deadline, "no answer from the processing loop"
            time.sleep(0.2)
            answers = [u for u in connector.fetch_updates(since) if u.resolves]
        assert answers[0].resolves is OutcomeStatus.CONFIRMED
    finally:
        process.terminate()
        process.wait(timeout=10)
