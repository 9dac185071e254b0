"""Supervise the real stack: every process watched, an exit reported at once, then its policy applied.

Each process has a policy (``Process.policy``):

- ``restart``: started again after a back-off (1 s, doubling to 30 s; back to 1 s after it has run
  for a minute). Five exits within five minutes is a crash loop: the whole stack stops, status 1.
  Airflow's components and the hub web app keep no state of their own (it is in PostgreSQL), so a
  restart is what a service manager would do.
- ``stop``: the whole stack stops with status 1. The simulators stand in for a council's other
  systems; one that dies means the demo itself is broken, and a restart would hide it.

Whatever a process leaves behind when it exits (workers in their own sessions, orphans) is stopped
with it: the supervisor registers as the "child subreaper" of everything it starts (Linux), so
orphans become its children instead of init's and can be found and stopped. SIGINT and SIGTERM stop
everything (processes and their whole trees: TERM, then KILL after 10 s) and leave nothing running.
The state of every process (pid, exits, restarts) is kept in a JSON status file for tools (bench/).
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from demo.stack import Process, Stack, terminate

RESTART = "restart"
STOP = "stop"
PR_SET_CHILD_SUBREAPER = 36


class StackFailed(RuntimeError):
    """A process exited and its policy (or a crash loop) stops the whole stack."""


class StopRequested(Exception):
    """SIGINT or SIGTERM: stop everything."""


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux prctl); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def describe_exit(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@dataclass
class Watch:
    """What the supervisor knows of one process."""

    process: Process
    state: str = "running"
    started_at: float = 0.0
    exits: list[dict[str, Any]] = field(default_factory=list)
    restarts: int = 0
    quick_exits: int = 0
    restart_at: float = 0.0
    known: set[tuple[int, float]] = field(default_factory=set)
    """(pid, create time) of descendants seen, to stop what it leaves behind when it exits."""


class Supervisor(Stack):
    """A ``Stack`` whose processes are watched and restarted or fatal, per their policy."""

    def __init__(self, log_dir: Path, *, status_path: Path | None = None,
                 report: Callable[[str], None] = print, backoff_first: float = 1.0,
                 backoff_max: float = 30.0, max_exits: int = 5, window: float = 300.0,
                 stable_after: float = 60.0) -> None:
        super().__init__(log_dir)
        self.status_path = status_path
        self.report = report
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.max_exits = max_exits
        self.window = window
        self.stable_after = stable_after
        self.watches: dict[str, Watch] = {}
        self.info: dict[str, Any] = {}
        self.subreaper = become_subreaper()
        self._last_scan = 0.0

    # -- starting ---------------------------------------------------------------------------
    def start(self, process: Process, ready_timeout: float = 30.0, wait: bool = True) -> Process:
        if process.policy not in (RESTART, STOP):
            raise ValueError(f"{process.name}: policy must be {RESTART!r} or {STOP!r}")
        self.watches[process.name] = Watch(process, started_at=time.monotonic())
        try:
            return super().start(process, ready_timeout, wait)
        finally:
            self.write_status()

    # -- watching ---------------------------------------------------------------------------
    def check(self) -> None:
        """Notice exits, apply policies, start due restarts. Raises StackFailed when fatal."""
        now = time.monotonic()
        if now - self._last_scan >= 1.0:
            self._remember_descendants()
            self._last_scan = now
        changed = False
        for watch in self.watches.values():
            popen = watch.process.popen
            if watch.state == "running" and popen is not None and popen.poll() is not None:
                changed = True
                self._exited(watch, popen.returncode, now)
            elif watch.state == "waiting" and now >= watch.restart_at:
                changed = True
                self.spawn(watch.process)
                watch.state, watch.started_at = "running", now
                watch.restarts += 1
                self.write_status()
                self.report(f"{watch.process.name} restarted (pid {watch.process.popen.pid}; "
                            f"restart {watch.restarts})")
        self._reap_adopted()
        if changed:
            self.write_status()

    def _exited(self, watch: Watch, code: int, now: float) -> None:
        process = watch.process
        ran = now - watch.started_at
        watch.exits.append({"at": time.time(), "code": code, "after_seconds": round(ran, 1)})
        self.report(f"{process.name} (pid {process.popen.pid}) {describe_exit(code)} after "
                    f"{ran:.0f} s; log: {self.log_path(process)}")
        self._stop_leftovers(watch)
        if process.policy == STOP:
            watch.state = "exited"
            raise StackFailed(f"{process.name} exited; its policy is to stop the whole stack")
        recent = [e for e in watch.exits if e["at"] >= time.time() - self.window]
        if len(recent) >= self.max_exits:
            watch.state = "exited"
            raise StackFailed(f"{process.name} exited {len(recent)} times within "
                              f"{self.window:.0f} s (crash loop); stopping the whole stack")
        watch.quick_exits = 0 if ran >= self.stable_after else watch.quick_exits + 1
        delay = min(self.backoff_max, self.backoff_first * 2 ** max(0, watch.quick_exits - 1))
        watch.state, watch.restart_at = "waiting", now + delay
        self.report(f"restarting {process.name} in {delay:g} s")

    def run(self, until: Callable[[], bool] | None = None, poll: float = 0.5) -> int:
        """Watch until ``until()`` is true (0), or a fatal exit (1). StopRequested propagates."""
        while True:
            try:
                self.check()
            except StackFailed as exc:
                self.report(f"{exc}")
                return 1
            if until is not None and until():
                return 0
            time.sleep(poll)

    # -- stopping ---------------------------------------------------------------------------
    def _remember_descendants(self) -> None:
        children: dict[int, list[psutil.Process]] = {}
        for proc in psutil.process_iter(["ppid"]):
            children.setdefault(proc.info["ppid"], []).append(proc)
        for watch in self.watches.values():
            popen = watch.process.popen
            if watch.state != "running" or popen is None:
                continue
            stack, seen = [popen.pid], set()
            while stack:
                for child in children.get(stack.pop(), []):
                    with contextlib.suppress(psutil.Error):
                        seen.add((child.pid, child.create_time()))
                        stack.append(child.pid)
            watch.known |= seen
            watch.known = {k for k in watch.known if psutil.pid_exists(k[0])}

    def _leftovers(self, watch: Watch) -> list[psutil.Process]:
        """Descendants seen earlier and members of its session that are still alive."""
        found: dict[int, psutil.Process] = {}
        for pid, created in watch.known:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.create_time() == created:
                    found[pid] = proc
        sid = watch.process.popen.pid if watch.process.popen else None
        if sid:
            for proc in psutil.process_iter():
                with contextlib.suppress(OSError, psutil.Error):
                    if proc.pid != os.getpid() and os.getsid(proc.pid) == sid:
                        found[proc.pid] = proc
        return list(found.values())

    def _stop_leftovers(self, watch: Watch) -> None:
        leftovers = self._leftovers(watch)
        if leftovers:
            self.report(f"stopping {len(leftovers)} process(es) {watch.process.name} left behind")
            terminate(leftovers, grace=3.0)
        watch.known.clear()

    def _reap_adopted(self) -> None:
        """Collect adopted orphans that exited (they would stay zombies of ours otherwise)."""
        ours = {w.process.popen.pid for w in self.watches.values() if w.process.popen}
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process().children():
                if child.pid not in ours:
                    with contextlib.suppress(psutil.Error, ChildProcessError):
                        if child.status() == psutil.STATUS_ZOMBIE:
                            os.waitpid(child.pid, os.WNOHANG)

    def everything(self) -> list[psutil.Process]:
        procs = {p.pid: p for p in super().everything()}
        for watch in self.watches.values():
            if watch.process.popen is not None:
                procs.update({p.pid: p for p in self._leftovers(watch)})
        if self.subreaper:   # orphans adopted from any of them
            with contextlib.suppress(psutil.Error):
                procs.update({p.pid: p for p in psutil.Process().children(recursive=True)})
        return list(procs.values())

    def stop(self) -> None:
        for watch in self.watches.values():
            watch.state = "stopped"
        super().stop()
        self._reap_adopted()
        self.write_status()

    # -- status -----------------------------------------------------------------------------
    def write_status(self) -> None:
        if self.status_path is None:
            return
        status = {**self.info, "supervisor_pid": os.getpid(), "updated_at": time.time(),
                  "components": {name: {"pid": w.process.popen.pid if w.process.popen else None,
                                        "state": w.state, "policy": w.process.policy,
                                        "restarts": w.restarts, "exits": w.exits,
                                        "log": str(self.log_path(w.process))}
                                 for name, w in self.watches.items()}}
        tmp = self.status_path.with_suffix(".tmp")
        tmp.touch(mode=0o600)   # it names the databases, with whatever credentials their URLs hold
        tmp.write_text(json.dumps(status, indent=2))
        tmp.replace(self.status_path)

    @staticmethod
    def stop_on_signals() -> None:
        """SIGINT and SIGTERM raise StopRequested in the main thread (even when started with
        SIGINT ignored, as a background job is)."""
        def handler(signum: int, frame: Any) -> None:
            raise StopRequested(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
