"""``hub new-connector``: the scaffold's output passes its own contract test as generated (run in
a subprocess, in a copy of the source tree), registers the system, and counts what it costs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.catalog import read_instances, registered_connectors
from hub import cli
from hub.scaffold import ScaffoldError, new_connector

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The source a new system builds on, copied: the product packages and the test support."""
    root = tmp_path / "tree"
    for name in ("connectors", "simulators", "mappings", "hub", "crm_adapter"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "tests" / "support", root / "tests" / "support",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("__init__.py", "conftest.py"):
        shutil.copy(REPO / "tests" / name, root / "tests" / name)
    shutil.copy(REPO / "pyproject.toml", root)
    return root


def _run(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root),
           "HUB_INSTANCES": str(root / "connectors" / "instances.yaml")}
    return subprocess.run([sys.executable, *argv], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)


def test_a_scaffolded_rest_system_passes_its_contract_test(
        tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["new-connector", "parking", "permitly", "--root", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "4 files" in out
    test = tree / "tests" / "connectors" / "parking" / "test_permitly_contract.py"
    ran = _run(tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert " passed" in ran.stdout and "failed" not in ran.stdout

    instances = read_instances(tree / "connectors" / "instances.yaml", registered_connectors())
    entry = instances["parking_permitly"]
    assert (entry.connector, entry.team, entry.conn_id) == (
        "connectors.parking.permitly:PermitlyConnector", "parking", "parking_permitly")
    assert {"revenues_northgate", "housing_repairs"} <= set(instances), "nothing else changed"
    loaded = _run(tree, "-c", "from mappings.loader import load_mappings; m = load_mappings(); "
                              "print(m.systems_for('parking_permitly_request'))")
    assert loaded.returncode == 0 and "parking_permitly" in loaded.stdout, loaded.stderr[-2000:]


def test_a_scaffolded_sql_system_passes_its_contract_test(tree: Path) -> None:
    """The SQL variant: the back office is its own database (SQLite here); a transient fault is
    another user's write lock, held a little longer than the connector waits."""
    written = new_connector("parking", "ledgerly", transport="sql", root=tree)
    assert {w.path.name for w in written} >= {"ledgerly.py", "backoffice.py",
                                              "test_ledgerly_contract.py"}
    test = tree / "tests" / "connectors" / "parking" / "test_ledgerly_contract.py"
    ran = _run(tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert " passed" in ran.stdout and "failed" not in ran.stdout


def test_a_scaffolded_soap_system_passes_its_contract_test(tree: Path) -> None:
    """The SOAP variant: zeep builds the requests from the WSDL the scaffold writes, which the
    simulator stub serves too (read as a file: the simulator imports no connector code)."""
    written = new_connector("parking", "soapy", transport="soap", root=tree)
    names = {w.path.name: w for w in written}
    assert {"soapy.py", "app.py", "soapy.wsdl", "test_soapy_contract.py"} <= set(names)
    assert sum(w.counted for w in written) == 4 and not names["soapy.wsdl"].counted
    simulator = names["app.py"].path.read_text()
    assert "import connectors" not in simulator and "from connectors" not in simulator
    test = tree / "tests" / "connectors" / "parking" / "test_soapy_contract.py"
    ran = _run(tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert " passed" in ran.stdout and "failed" not in ran.stdout
    entry = read_instances(tree / "connectors" / "instances.yaml",
                           registered_connectors())["parking_soapy"]
    assert entry.connector == "connectors.parking.soapy:SoapyConnector"


@pytest.mark.sshd
def test_a_scaffolded_sftp_system_passes_its_contract_test(tree: Path) -> None:
    """The SFTP variant: one request file per batch, every record AWAITING; the back office's
    batch run (the harness's settle) answers in files of its own, over the suite's real sshd."""
    written = new_connector("parking", "batchly", transport="sftp", root=tree)
    names = {w.path.name for w in written}
    assert {"batchly.py", "backoffice.py", "test_batchly_contract.py"} <= names
    assert sum(w.counted for w in written) == 4
    test = tree / "tests" / "connectors" / "parking" / "test_batchly_contract.py"
    ran = _run(tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert " passed" in ran.stdout and "failed" not in ran.stdout and "skipped" in ran.stdout
    assert "10 passed" in ran.stdout, "every check but the optional records() ones ran"


def test_what_a_new_rest_system_costs(tree: Path) -> None:
    """docs/connectors.md states this figure: four files under 150 lines with the registration."""
    written = new_connector("parking", "permitly", root=tree)
    counted = [w for w in written if w.counted]
    assert len(counted) == 4
    assert sum(w.lines for w in counted) + 3 < 150, "+3: the instances-file entry"
    assert all(w.lines == 0 for w in written if w.path.name == "__init__.py"
               and "connectors" in w.path.parts)
    text = "".join(w.path.read_text() for w in counted)
    assert text.count("TODO(vendor)") >= 6


def test_a_second_system_in_a_domain_gets_its_own_operations_and_simulator(tree: Path) -> None:
    """Housing has its own operations.py and simulators/housing/app.py: the new system's are
    named after it, the instance names its operations module, and nothing shipped changes."""
    shipped = {p: p.read_bytes() for p in (tree / "connectors" / "housing").rglob("*.py")}
    shipped |= {p: p.read_bytes() for p in (tree / "simulators" / "housing").rglob("*.py")}
    written = new_connector("housing", "fixit", root=tree)
    names = {w.path.name for w in written}
    assert {"fixit.py", "fixit_operations.py", "fixit_app.py"} <= names
    assert all(p.read_bytes() == text for p, text in shipped.items()), "nothing shipped changed"
    entry = read_instances(tree / "connectors" / "instances.yaml",
                           registered_connectors())["housing_fixit"]
    assert entry.operations == "connectors.housing.fixit_operations:OPERATIONS"
    assert read_instances(tree / "connectors" / "instances.yaml", registered_connectors())[
        "housing_repairs"].operations == "connectors.housing.operations:OPERATIONS"
    test = tree / "tests" / "connectors" / "housing" / "test_fixit_contract.py"
    ran = _run(tree, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    loaded = _run(tree, "-c", "from mappings.loader import load_mappings; m = load_mappings(); "
                              "print(m.systems_for('housing_fixit_request'), "
                              "m.systems_for('housing_repair_request'))")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert "housing_fixit" in loaded.stdout and "housing_repairs" in loaded.stdout


def test_nothing_is_overwritten_and_bad_names_are_refused(tree: Path) -> None:
    new_connector("parking", "permitly", root=tree)
    with pytest.raises(ScaffoldError, match="already there"):
        new_connector("parking", "permitly", root=tree)
    for domain, system in (("Parking", "x1"), ("parking", "a_b"), ("p", "permitly")):
        with pytest.raises(ScaffoldError, match="lower-case"):
            new_connector(domain, system, root=tree)
    with pytest.raises(ScaffoldError, match="transport 'ftp'"):
        new_connector("parking", "other", transport="ftp", root=tree)
    assert not (tree / "connectors" / "parking" / "other.py").exists()


@pytest.mark.parametrize("transport", ["rest", "soap", "sftp", "sql"])
def test_docs_state_what_each_transport_costs(tmp_path: Path, transport: str) -> None:
    """docs/connectors.md's table of costs is what the scaffold writes (the lines it counts, and
    the 3-line instance entry)."""
    written = new_connector("parking", "permitly", transport=transport, root=tmp_path,
                            instances=tmp_path / "instances.yaml")
    lines = {w.path.name: w.lines for w in written if w.counted}
    row = re.search(rf"^\| `{transport}` \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| 4, (\d+) \|",
                    (REPO / "docs" / "connectors.md").read_text(), re.MULTILINE)
    assert row, f"no row for {transport} in docs/connectors.md"
    stated = [int(n) for n in row.groups()]
    assert stated[:4] == [lines["permitly.py"], lines["operations.py"],
                          lines["parking_permitly_request.yaml"],
                          lines["test_permitly_contract.py"]]
    assert stated[4] == sum(lines.values()) + 3
