"""A supervisor driven by a JSON spec, for tests: ``python -m tests.demo.supervised spec.json``.

Starts the spec's processes under ``demo.supervisor.Supervisor`` (with its signal handling), prints
each report on its own line, and exits with what ``make up`` would: 0 on SIGINT/SIGTERM, 1 when a
process's exit stops the stack.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from demo.stack import Process
from demo.supervisor import StopRequested, Supervisor


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    home = Path(spec["home"])
    Supervisor.stop_on_signals()
    supervisor = Supervisor(home / "logs", status_path=home / "stack.json",
                            report=lambda m: print(m, flush=True), **spec.get("settings", {}))
    try:
        with supervisor:
            for p in spec["processes"]:
                supervisor.start(Process(p["name"], p["argv"], policy=p["policy"]))
            print("READY", flush=True)
            return supervisor.run()
    except StopRequested as exc:
        print(f"STOPPED {exc}", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
