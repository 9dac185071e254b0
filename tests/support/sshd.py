"""A real OpenSSH sshd on 127.0.0.1 for SFTP tests.

``start_sshd(workdir)`` writes a throwaway host key, a throwaway client key (authorised) and a
stranger key (not authorised), a known_hosts file and an sshd_config, then runs
``/usr/sbin/sshd -D -e -f <config>`` on a free port. The SFTP subsystem is a small wrapper script
around OpenSSH's ``sftp-server`` that:

- starts each session in the folder named by ``use_root()`` (``sftp-server -d``), so relative
  paths such as ``inbound`` land in a per-test folder;
- refuses the next N sessions when ``fail_next(N)`` is set (a server-side transient failure);
- records the pid of the latest ``sftp-server`` so a test can kill it mid-transfer.

``sshd_server`` is a session fixture; it skips (with the reason) only when sshd is not installed
and cannot be installed with apt-get.
"""
from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
SFTP_SERVER_CANDIDATES = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                          "/usr/libexec/sftp-server")

_WRAPPER = """#!/bin/sh
D='{ctl}'
echo $$ > "$D/sftp.pid"
n=$(cat "$D/fail_count" 2>/dev/null || echo 0)
if [ "$n" -gt 0 ]; then
  echo $((n - 1)) > "$D/fail_count"
  exit 1
fi
exec {sftp_server} -d "$(cat "$D/root")"
"""

_CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {ctl}/ssh_host_ed25519_key
PidFile {ctl}/sshd.pid
AuthorizedKeysFile {ctl}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
StrictModes no
UsePAM no
MaxStartups 100
LogLevel ERROR
Subsystem sftp {ctl}/sftp-wrapper.sh
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
                   check=True, timeout=30)
    kind, blob, *_ = path.with_suffix(".pub").read_text().split()
    return f"{kind} {blob}"


def ensure_sshd() -> str | None:
    """None when sshd is usable, else why not (after trying apt-get once)."""
    if not Path(SSHD).exists():
        try:
            subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                           "apt-get install -y -qq openssh-server", shell=True, check=True,
                           timeout=600, capture_output=True)
        except (subprocess.SubprocessError, OSError) as exc:
            return f"openssh-server is not installed and apt-get failed: {type(exc).__name__}"
    if not Path(SSHD).exists():
        return "openssh-server is not installed (/usr/sbin/sshd missing)"
    if not any(Path(p).exists() for p in SFTP_SERVER_CANDIDATES):
        return "OpenSSH sftp-server binary not found"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen not found"
    return None


@dataclass
class SshServer:
    """A running sshd and the files a client needs."""

    host: str
    port: int
    username: str
    ctl: Path
    known_hosts_path: Path
    host_key_line: str
    """``<type> <base64>`` of the server's host key."""
    client_key_path: Path
    stranger_key_path: Path
    process: subprocess.Popen[bytes]

    def use_root(self, root: Path) -> None:
        """New SFTP sessions start in ``root`` (relative paths resolve there)."""
        (self.ctl / "root").write_text(str(root))

    def fail_next(self, sessions: int) -> None:
        """The next ``sessions`` SFTP sessions are refused (the subsystem exits at once)."""
        (self.ctl / "fail_count").write_text(str(sessions))

    def kill_current_sftp_server(self) -> None:
        """Kill the newest sftp-server process (drops that client's SFTP channel)."""
        pid = int((self.ctl / "sftp.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)

    def log_text(self) -> str:
        return (self.ctl / "sshd.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_sshd(ctl: Path, startup_timeout: float = 15.0) -> SshServer:
    """Write keys and config under ``ctl`` and start sshd on a free port."""
    ctl.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    host_key = _keygen(ctl / "ssh_host_ed25519_key")
    client_pub = _keygen(ctl / "client_key")
    _keygen(ctl / "stranger_key")
    (ctl / "authorized_keys").write_text(client_pub + "\n")
    sftp_server = next(p for p in SFTP_SERVER_CANDIDATES if Path(p).exists())
    wrapper = ctl / "sftp-wrapper.sh"
    wrapper.write_text(_WRAPPER.format(ctl=ctl, sftp_server=sftp_server))
    wrapper.chmod(0o755)
    (ctl / "root").write_text(str(ctl))
    (ctl / "fail_count").write_text("0")
    port = _free_port()
    user = getpass.getuser()
    config = ctl / "sshd_config"
    config.write_text(_CONFIG.format(port=port, ctl=ctl, user=user))
    known_hosts = ctl / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key}\n")
    checked = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, timeout=30)
    if checked.returncode != 0:
        raise RuntimeError(f"sshd rejects the test config: {checked.stderr.decode(errors='replace')}")
    log = open(ctl / "sshd.log", "wb")  # noqa: SIM115 - kept open for the process's lifetime
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    server = SshServer("127.0.0.1", port, user, ctl, known_hosts, host_key, ctl / "client_key",
                       ctl / "stranger_key", process)
    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {server.log_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("sshd did not start listening")
        time.sleep(0.05)
    return server


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A real OpenSSH sshd for the whole test session (skips only if it cannot be installed)."""
    reason = ensure_sshd()
    if reason:
        pytest.skip(reason)
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()
