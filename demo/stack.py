"""Start and stop the demo's processes (simulators, hub web app) and keep its generated secrets."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def load_secrets(path: Path, names: Sequence[str]) -> dict[str, str]:
    """Generated once per demo folder (file mode 0600) and reused, never committed."""
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in names if n not in values]
    if missing:
        for name in missing:
            values[name] = secrets.token_urlsafe(24)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2))
        path.chmod(0o600)
    return values


@dataclass
class Process:
    name: str
    argv: list[str]
    port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    popen: subprocess.Popen | None = None


class Stack:
    """Processes started in their own process groups, all stopped on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[Process] = []

    def start(self, process: Process, ready_timeout: float = 30.0) -> Process:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{process.name}.log", "ab")
        process.popen = subprocess.Popen(
            [sys.executable, *process.argv], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **process.env}, start_new_session=True)
        self.processes.append(process)
        if process.port:
            wait_for_port(process.port, ready_timeout, process.popen)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.popen and process.popen.poll() is None:
                os.killpg(process.popen.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            if process.popen:
                try:
                    process.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.popen.pid, signal.SIGKILL)
                    process.popen.wait(timeout=5)
        self.processes.clear()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
