"""An unreadable back-office answer full of personal data, through a real DAG task (``dag.test()``
in a real Airflow): none of it may reach the Airflow task log, the hub's logs or the ledger's
attempt records, work items and CRM notes. Exceptions carry operations, statuses and digests.

Two answers are driven: a create answered with broken XML (an unknown outcome: the connector then
looks the key up and gets a record whose reference is markup), and a DTD with an entity (a
security-flagged permanent error: the task fails, an operations work item is opened).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request, Response

from hub.ledger import db
from hub.ledger.models import Attempt, Case, Command, OutboxMessage, WorkItem, utcnow
from simulators.serving import serve_in_thread
from tests.connectors.waste.replay import OWN, envelope, result

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.airflow, pytest.mark.timeout(900)]

PERSONAL = ["Zebedee Quillfeather", "07700 900123", "SW1A 2AA", "zeb.quill@example.org"]
L = "http://www.bartec-systems.com"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def _garbage() -> str:
    name, phone, postcode, email = PERSONAL
    return (f"<ServiceRequest_CreateResponse><Result><Contact>{name} {phone} {email}</Contact>"
            f"<Address>1 High St {postcode}<Broken></Result>")


def _markup_reference() -> str:
    name, phone, postcode, _ = PERSONAL
    record = (f'<ServiceRequest><ServiceCode xmlns="{L}"><b>{name}</b> {phone}</ServiceCode>'
              f'<ExternalReference xmlns="{L}">{postcode}</ExternalReference></ServiceRequest>')
    return result("ServiceRequests_Get", record)


def _hostile_dtd() -> bytes:
    name, phone, postcode, _ = PERSONAL
    return (f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY who "{name} {phone}">]>'
            f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Body><ServiceRequest_CreateResponse>'
            f"&who; {postcode}</ServiceRequest_CreateResponse></soap:Body></soap:Envelope>"
            ).encode()


class HostileBartec:
    """A Bartec endpoint that answers reference data correctly and the create with ``mode``."""

    def __init__(self) -> None:
        self.mode = "garbage"
        self.app = FastAPI()
        types = result("ServiceRequests_Types_Get",
                       f'<ServiceType><ID xmlns="{L}">101</ID><Name xmlns="{L}">BULKY COLLECTION'
                       f"</Name></ServiceType>")

        @self.app.post("/soap")
        async def soap(request: Request) -> Response:
            body = (await request.body()).decode()
            operation = body.split(":Body>", 1)[1].split(">", 1)[0].lstrip("<").split()[0]
            operation = operation.split(":")[-1]
            if operation == "ServiceRequest_Create":
                if self.mode == "dtd":
                    return Response(_hostile_dtd(), status_code=500, media_type="text/xml")
                return Response(envelope(_garbage()).replace(b"</soap:Envelope>", b""),
                                media_type="text/xml")
            if operation == "ServiceRequests_Get":
                return Response(envelope(_markup_reference()), media_type="text/xml")
            answer = types if operation == "ServiceRequests_Types_Get" else OWN[operation]
            return Response(envelope(answer if isinstance(answer, str) else ""),
                            media_type="text/xml")


@pytest.fixture(scope="module")
def bartec() -> Iterator[tuple[HostileBartec, str]]:
    server = HostileBartec()
    with serve_in_thread(server.app) as url:
        yield server, f"{url}/soap"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow-no-payload")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HUB_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",   # the most any operator would switch on
        "HUB_DATABASE_URL": f"sqlite:///{home / 'hub.db'}", "HUB_TASK_RETRIES": "0",
        # dag.test() in Airflow 3.3.2 cannot finish a run of a DAG with Deadline Alerts (see
        # demo/airflow_runs.py): switch them off, as the demo does; the scheduler keeps them.
        "HUB_DEADLINE_MINUTES": "0",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], cwd=REPO, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    db.migrate(env["HUB_DATABASE_URL"])
    return env


def _pending_command(url: str, n: int) -> None:
    with db.session_scope(url) as session:
        case = Case(crm_id=f"CRM-NP{n}", version=1, case_type="waste_bulky_collection",
                    source="pull", state="mapped", payload={}, received_at=utcnow())
        session.add(case)
        session.flush()
        session.add(Command(case_id=case.id, system="waste_bartec",
                            operation="waste.bulky_collection", key=f"np-key-{n}",
                            payload={"uprn": "100090000001", "slot_date": "2030-01-07",
                                     "items": [{"name": "Sofa", "quantity": 1}]},
                            created_at=utcnow()))


def _run_dag(env: dict[str, str], endpoint: str) -> subprocess.CompletedProcess[str]:
    connection = {"conn_type": "http", "host": endpoint, "login": "hub-api", "password": "pw",
                  "extra": {"retry_attempts": 2, "retry_max_wait_seconds": 0.05,
                            "timeout_seconds": 5}}
    script = ("from airflow.dag_processing.dagbag import DagBag\n"
              f"bag = DagBag({str(REPO / 'dags')!r})\n"
              "run = bag.dags['waste_bartec'].test()\n"
              "print('DAG-STATE', getattr(run.state, 'value', run.state))\n")
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, text=True, timeout=600,
                          env={**env, "AIRFLOW_CONN_WASTE_BARTEC": json.dumps(connection)},
                          capture_output=True)


def _everything_written(env: dict[str, str], proc: subprocess.CompletedProcess[str]) -> str:
    texts = [proc.stdout, proc.stderr]
    for path in Path(env["AIRFLOW_HOME"], "logs").rglob("*"):
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    with db.session_scope(env["HUB_DATABASE_URL"]) as session:
        for attempt in session.scalars(sa.select(Attempt)):
            texts.append(f"{attempt.error_class} {attempt.code} {attempt.message}")
        texts += [w.reason for w in session.scalars(sa.select(WorkItem))]
        texts += [o.note for o in session.scalars(sa.select(OutboxMessage))]
        texts += [c.message or "" for c in session.scalars(sa.select(Command))]
    return "\n".join(texts)


def test_an_unreadable_answer_leaves_no_personal_data_anywhere(bartec, airflow_home) -> None:  # noqa: ANN001
    server, endpoint = bartec
    server.mode = "garbage"
    _pending_command(airflow_home["HUB_DATABASE_URL"], 1)
    proc = _run_dag(airflow_home, endpoint)
    assert "DAG-STATE" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    written = _everything_written(airflow_home, proc)
    with db.session_scope(airflow_home["HUB_DATABASE_URL"]) as session:
        attempts = list(session.scalars(sa.select(Attempt)))
        command = session.scalar(sa.select(Command).where(Command.key == "np-key-1"))
        assert command.state == "pending" and command.maybe_sent
    assert attempts and {a.error_class for a in attempts} == {"UnknownOutcomeError"}, \
        "the path under test was driven: an unknown outcome, not a confirmation"
    assert "sha256:" in written or "ServiceCode" in written
    leaked = [v for v in PERSONAL if v in written]
    assert not leaked, f"personal values reached logs or the ledger: {len(leaked)}"


def test_a_hostile_dtd_fails_the_task_flags_operations_and_leaks_nothing(bartec, airflow_home) -> None:  # noqa: ANN001
    server, endpoint = bartec
    server.mode = "dtd"
    _pending_command(airflow_home["HUB_DATABASE_URL"], 2)
    proc = _run_dag(airflow_home, endpoint)
    assert "DAG-STATE failed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    written = _everything_written(airflow_home, proc)
    with db.session_scope(airflow_home["HUB_DATABASE_URL"]) as session:
        flags = [w for w in session.scalars(sa.select(WorkItem)) if w.kind == "security_flag"]
    assert flags and flags[0].team == "operations"
    leaked = [v for v in PERSONAL if v in written]
    assert not leaked, f"personal values reached logs or the ledger: {len(leaked)}"
