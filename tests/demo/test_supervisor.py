"""The real stack's supervisor, as `make up` runs it (a process of its own, with its signal handling).

What the operations guide promises: an exit is reported at once; a ``restart`` process is started
again after a back-off, a ``stop`` process takes the whole stack down with status 1, and so does a
crash loop; whatever a dead process leaves behind goes with it; SIGINT and SIGTERM stop everything,
orphans included, and leave nothing running.
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
SLEEPER = ["-c", "import time; time.sleep(600)"]


def with_escapee(pid_file: Path) -> list[str]:
    """A process that starts a child in a session of its own (out of its process group), the way
    servers start workers, and writes the child's pid to ``pid_file``."""
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
            " start_new_session=True)\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
            "time.sleep(600)\n")
    return ["-c", code]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


class Driven:
    """The supervisor in a child process; its report lines read as they come."""

    def __init__(self, home: Path, processes: list[dict[str, Any]], **settings: Any) -> None:
        self.home = home
        spec = home / "spec.json"
        spec.write_text(json.dumps({"home": str(home), "processes": processes,
                                    "settings": settings}))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.demo.supervised", str(spec)],
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.expect("READY", 30)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str, timeout: float) -> float:
        """Seconds until a report line matching ``pattern`` arrives."""
        started = time.monotonic()
        while True:
            remaining = timeout - (time.monotonic() - started)
            try:
                line = self.lines.get(timeout=max(0.01, remaining))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in {timeout} s; "
                                     f"saw {self.seen}") from None
            self.seen.append(line)
            if re.search(pattern, line):
                return time.monotonic() - started

    def status(self) -> dict[str, Any]:
        return json.loads((self.home / "stack.json").read_text())

    def pid(self, name: str) -> int:
        return int(self.status()["components"][name]["pid"])

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def driven(tmp_path: Path):
    made: list[Driven] = []

    def make(processes: list[dict[str, Any]], **settings: Any) -> Driven:
        made.append(Driven(tmp_path, processes, **settings))
        return made[-1]

    yield make
    for d in made:
        d.close()


def test_a_restart_process_that_dies_is_reported_at_once_and_started_again(driven) -> None:
    d = driven([{"name": "svc", "argv": SLEEPER, "policy": "restart"}], backoff_first=0.5)
    first = d.pid("svc")
    os.kill(first, signal.SIGKILL)
    assert d.expect(rf"svc \(pid {first}\) killed by SIGKILL", 5) < 2.0, "reported within 2 s"
    d.expect(r"restarting svc in 0\.5 s", 2)
    d.expect(r"svc restarted", 10)
    second = d.pid("svc")
    assert second != first and not gone(second)
    status = d.status()["components"]["svc"]
    assert status["restarts"] == 1 and status["state"] == "running"
    assert [e["code"] for e in status["exits"]] == [-signal.SIGKILL]
    d.proc.send_signal(signal.SIGTERM)
    assert d.wait() == 0
    assert gone(second)


def test_a_stop_process_that_dies_stops_the_whole_stack_with_status_1(driven, tmp_path) -> None:
    escapee_file = tmp_path / "escapee.pid"
    d = driven([{"name": "simulator", "argv": SLEEPER, "policy": "stop"},
                {"name": "svc", "argv": with_escapee(escapee_file), "policy": "restart"}])
    wait_for(escapee_file.exists, 10, "the escapee started")
    escapee, svc = int(escapee_file.read_text()), d.pid("svc")
    os.kill(d.pid("simulator"), signal.SIGTERM)
    d.expect(r"simulator \(pid \d+\) killed by SIGTERM", 5)
    assert d.wait() == 1
    assert any("stop the whole stack" in line for line in d.seen), d.seen
    assert gone(svc) and gone(escapee), "everything else is stopped with it"
    assert d.status()["components"]["simulator"]["state"] == "stopped"


def test_a_crash_loop_stops_the_stack(driven) -> None:
    d = driven([{"name": "broken", "argv": ["-c", "raise SystemExit(3)"], "policy": "restart"}],
               backoff_first=0.05, max_exits=3)
    assert d.wait() == 1
    assert sum("broken" in line and "exit status 3" in line for line in d.seen) == 3, d.seen
    assert any("crash loop" in line for line in d.seen), d.seen
    assert len(d.status()["components"]["broken"]["exits"]) == 3


def test_what_a_dead_process_leaves_behind_is_stopped_with_it(driven, tmp_path) -> None:
    escapee_file = tmp_path / "escapee.pid"
    d = driven([{"name": "svc", "argv": with_escapee(escapee_file), "policy": "restart"}],
               backoff_first=0.2)
    wait_for(escapee_file.exists, 10, "the escapee started")
    escapee = int(escapee_file.read_text())
    escapee_file.unlink()
    time.sleep(1.5)   # the supervisor notes descendants every second
    os.kill(d.pid("svc"), signal.SIGKILL)
    d.expect(r"stopping 1 process\(es\) svc left behind", 5)
    wait_for(lambda: gone(escapee), 10, "the escapee is stopped")
    d.expect(r"svc restarted", 10)
    wait_for(escapee_file.exists, 10, "the restarted process started its own")
    second_escapee = int(escapee_file.read_text())
    d.proc.send_signal(signal.SIGINT)
    assert d.wait() == 0
    assert gone(second_escapee)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_stop_everything_and_leave_nothing_running(driven, tmp_path, sig) -> None:
    escapee_file = tmp_path / "escapee.pid"
    d = driven([{"name": "svc", "argv": with_escapee(escapee_file), "policy": "restart"},
                {"name": "simulator", "argv": SLEEPER, "policy": "stop"}])
    wait_for(escapee_file.exists, 10, "the escapee started")
    pids = [d.pid("svc"), d.pid("simulator"), int(escapee_file.read_text())]
    d.proc.send_signal(sig)
    assert d.wait(60) == 0
    assert any(line == f"STOPPED {sig.name}" for line in d.seen), d.seen
    assert all(gone(pid) for pid in pids), [p for p in pids if not gone(p)]
    assert {c["state"] for c in d.status()["components"].values()} == {"stopped"}
