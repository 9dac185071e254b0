"""The reviewer's path on a running stack: the simulators and the CRM started as `make up` starts
them, the sample cases delivered, then a record changed directly in a simulator
(`python -m demo.drift`) is found once by the next `hub --env-file <home>/hub.env reconcile`, run
as a separate command whose environment holds no Connection of its own."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from demo.driver import Demo
from demo.realstack import simulator_urls
from demo.stack import REPO, Stack
from demo.systems import airflow_env
from hub import envfile

SYSTEM = "licensing_uniform"
HUB = str(Path(sys.executable).parent / "hub")


def clean_env() -> dict[str, str]:
    """This process's environment without any hub setting or Connection."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW_CONN_", "HUB_"))}


def reconcile(env_file: Path) -> str:
    done = subprocess.run([HUB, "--env-file", str(env_file), "reconcile", "--system", SYSTEM],
                          cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith(f"{SYSTEM}: run ")]
    assert len(lines) == 1, done.stdout[-2000:]
    return lines[0]


@pytest.fixture
def restored_environ():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_a_change_made_in_a_simulator_is_found_by_the_next_hub_reconcile(
        tmp_path: Path, restored_environ: None) -> None:
    from hub import connections, dispatch, intake, outbox
    from hub.ledger import db

    home = tmp_path / "up"
    d = Demo(home)
    d.setup(only=[SYSTEM])
    with Stack(home / "logs") as stack:
        stack.start(d.crm.process())
        d.start_systems(stack)
        d.env.update(airflow_env(d.crm, d.systems))
        env_file = d.write_hub_env()
        (home / "stack.json").write_text(json.dumps({"simulator_urls": simulator_urls(d.systems)}))
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        settings = envfile.read(env_file)
        assert settings["HUB_DATABASE_URL"] == d.env["HUB_DATABASE_URL"]
        assert {"AIRFLOW_CONN_CRM", f"AIRFLOW_CONN_{SYSTEM.upper()}"} <= set(settings)

        # the stack delivers the sample cases (what its DAGs do), in this process
        os.environ.update(settings)
        url = settings["HUB_DATABASE_URL"]
        db.migrate(url)
        with connections.crm_client() as crm:
            intake.pull_from_crm(crm, url=url)
            intake.map_received(url=url)
            connector = connections.connector_for(SYSTEM)
            try:
                dispatch.dispatch_all(connector, SYSTEM, url=url)
            finally:
                connector.close()
            outbox.deliver_pending(crm, url=url)

        before = reconcile(env_file)
        assert "found nothing" in before, before

        made = subprocess.run([sys.executable, "-m", "demo.drift", "--home", str(home),
                               "field_mismatch", SYSTEM], cwd=REPO, env=clean_env(),
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr[-2000:]
        entry = json.loads(made.stdout)
        assert entry["system"] == SYSTEM and entry["field"] == "applicant.name"

        after = reconcile(env_file)
        assert "found field_mismatch 1 (1 new);" in after, after
        assert "work items opened 1" in after, after

        again = reconcile(env_file)
        assert "found field_mismatch 1 (0 new)" in again and "work items opened 0" in again, again
