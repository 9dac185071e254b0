"""``python -m simulators.crm`` as a real process."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from simulators.crm.__main__ import main
from simulators.serving import free_port

REPO = Path(__file__).resolve().parents[3]


def test_cli_serves_the_seeded_demo(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {"CRM_SIM_TOKEN": "cli-token"}
    proc = subprocess.Popen([sys.executable, "-m", "simulators.crm", "--port", str(port),
                             "--db", str(tmp_path / "crm.sqlite"), "--seed-demo"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline, stats = time.monotonic() + 20, None
        while stats is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                stats = httpx.get(f"http://127.0.0.1:{port}/admin/stats", timeout=1).json()
            except httpx.TransportError:
                time.sleep(0.1)
        assert stats is not None and stats["cases"] > 0
        feed = httpx.get(f"http://127.0.0.1:{port}/api/v1/cases", timeout=5,
                         headers={"Authorization": "Bearer cli-token"})
        assert feed.status_code == 200 and feed.json()["cases"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_refuses_to_start_without_token_or_secret(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRM_SIM_TOKEN", raising=False)
    monkeypatch.delenv("CRM_WEBHOOK_SECRET", raising=False)
    assert main(["--db", str(tmp_path / "x.sqlite")]) == 2
    assert main(["--db", str(tmp_path / "x.sqlite"), "--token", "t",
                 "--webhook-url", "http://127.0.0.1:1/webhooks/crm"]) == 2
    assert not (tmp_path / "x.sqlite").exists()
