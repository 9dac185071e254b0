"""Start and stop the demo's processes (simulators, hub web app) and keep its generated secrets."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

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


def load_secrets(path: Path, names: Sequence[str],
                 makers: Mapping[str, Callable[[], str]] | None = None) -> dict[str, str]:
    """Generated once per demo folder (file mode 0600) and reused, never committed. ``makers``
    generate the secrets that need a format of their own (others are random URL-safe text)."""
    makers = makers or {}
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in [*names, *makers] if n not in values]
    if missing:
        for name in missing:
            values[name] = makers[name]() if name in makers else secrets.token_urlsafe(24)
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
    policy: str = "stop"
    """What a supervisor does when it exits: ``stop`` the whole stack, or ``restart`` it."""


def _tree(pid: int) -> list[psutil.Process]:
    """A process and every descendant it has now (children first, so nothing restarts them)."""
    try:
        root = psutil.Process(pid)
        return [*root.children(recursive=True), root]
    except psutil.Error:
        return []


def terminate(procs: list[psutil.Process], grace: float = 10.0) -> None:
    """TERM, then KILL whatever is still running after ``grace`` seconds."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)


class Stack:
    """Processes started in their own process groups, all stopped on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[Process] = []

    def log_path(self, process: Process) -> Path:
        return self.log_dir / f"{process.name}.log"

    def spawn(self, process: Process) -> None:
        """Start (or start again) one process in a session of its own, its output to its log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(process), "ab") as log:
            process.popen = subprocess.Popen(
                [sys.executable, *process.argv], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **process.env}, start_new_session=True)

    def start(self, process: Process, ready_timeout: float = 30.0, wait: bool = True) -> Process:
        """Start ``process``; with ``wait``, return once it listens on its port."""
        self.spawn(process)
        self.processes.append(process)
        if process.port and wait:
            wait_for_port(process.port, ready_timeout, process.popen)
        return process

    def stop(self) -> None:
        """Stop every process and all its descendants, the last started first (TERM, then KILL
        after 10 s), even if a signal comes again meanwhile. Trees, not groups: Airflow's API
        server starts its own. Last first lets the scheduler stop before the workers and the
        workers finish their tasks before the API server they report to goes."""
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, signal.SIG_IGN)
            except ValueError:   # not the main thread
                pass
        try:
            for process in reversed(self.processes):
                if process.popen:
                    terminate(_tree(process.popen.pid))
            terminate(self.everything())   # anything left behind by any of them
            for process in self.processes:
                if process.popen:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.popen.wait(timeout=5)
            self.processes.clear()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def everything(self) -> list[psutil.Process]:
        """What ``stop`` stops: every process's tree as it is now."""
        return [p for process in reversed(self.processes) if process.popen
                for p in _tree(process.popen.pid)]

    def exited(self) -> list[Process]:
        """Processes that have stopped by themselves."""
        return [p for p in self.processes if p.popen and p.popen.poll() is not None]

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
