"""`hub --env-file`: the file `make up` writes is read the same by `hub` and by a POSIX shell,
private to its owner; a broken line is refused naming the line, never its value."""
from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from hub import cli, envfile

VALUES = {"HUB_DATABASE_URL": "postgresql+psycopg2://hub:p'w d@127.0.0.1/hub_ledger",
          "AIRFLOW_CONN_CRM": json.dumps({"conn_type": "http", "host": "http://x", "password": "s $ecret"})}


def test_written_private_and_read_back_by_hub_and_by_the_shell(tmp_path: Path) -> None:
    path = envfile.write(tmp_path / "up" / "hub.env", VALUES, header="two lines\nof header")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert envfile.read(path) == VALUES
    shell = subprocess.run(["bash", "-c", f"set -a; . {path}; set +a; "
                            "printf '%s\\n%s' \"$HUB_DATABASE_URL\" \"$AIRFLOW_CONN_CRM\""],
                           capture_output=True, text=True, check=True, env={})
    assert shell.stdout.split("\n") == [VALUES["HUB_DATABASE_URL"], VALUES["AIRFLOW_CONN_CRM"]]


def test_a_broken_line_is_refused_by_number_without_its_value(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hub.env"
    path.write_text("# ok\nHUB_DATABASE_URL='sqlite:///x'\nAIRFLOW_CONN_CRM='secret-value\n")
    with pytest.raises(envfile.EnvFileError, match="line 3") as caught:
        envfile.read(path)
    assert "secret-value" not in str(caught.value)
    assert cli.main(["--env-file", str(path), "work-items"]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "secret-value" not in err
    assert cli.main(["--env-file", str(tmp_path / "absent.env"), "work-items"]) == 2
