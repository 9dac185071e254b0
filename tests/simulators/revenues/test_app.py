"""The Revenues simulator speaks SOAP safely and keeps its promises (idempotency, staff changes)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from lxml import etree

from simulators.revenues.app import NS, create_app
from simulators.revenues.store import Applied, ReferenceClash, RevenuesStore, rebilled_balance
from simulators.serving import free_port, serve_in_thread
from simulators.soap import SoapFault

ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
REPO = Path(__file__).resolve().parents[3]


def envelope(body: str, *, user: str = "sim", password: str = "pw", prolog: str = "") -> str:
    header = (f'<soap:Header><wsse:Security xmlns:wsse="{WSSE}"><wsse:UsernameToken>'
              f"<wsse:Username>{user}</wsse:Username><wsse:Password>{password}</wsse:Password>"
              f"</wsse:UsernameToken></wsse:Security></soap:Header>")
    return (f'{prolog}<soap:Envelope xmlns:soap="{ENV}">{header}<soap:Body>{body}</soap:Body>'
            f"</soap:Envelope>")


def fault_of(response: httpx.Response) -> tuple[str, str]:
    doc = etree.fromstring(response.content)
    node = doc.find(f"{{{ENV}}}Body/{{{ENV}}}Fault")
    assert node is not None, response.text
    return node.findtext("faultcode") or "", node.findtext("faultstring") or ""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(tmp_path_factory.mktemp("rev") / "r.db", username="sim", password="pw",
                     seed_demo=True)
    with serve_in_thread(app) as url:
        yield url


def post(url: str, text: str) -> httpx.Response:
    return httpx.post(f"{url}/soap", content=text.encode(), timeout=5,
                      headers={"Content-Type": "text/xml; charset=utf-8"})


def test_wsdl_is_served_with_the_callers_address(sim: str) -> None:
    response = httpx.get(f"{sim}/soap?wsdl", timeout=5)
    assert response.status_code == 200
    doc = etree.fromstring(response.content)
    [address] = doc.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == f"{sim}/soap"


def test_account_get_answers_in_the_wsdl_namespace(sim: str) -> None:
    response = post(sim, envelope(f'<AccountGet xmlns="{NS}"><AccountRef>CT00000001</AccountRef>'
                                  f"</AccountGet>"))
    assert response.status_code == 200
    doc = etree.fromstring(response.content)
    assert doc.findtext(f".//{{{NS}}}Band") == "B"


def test_missing_or_wrong_credentials_are_an_authentication_fault(sim: str) -> None:
    body = f'<SystemCheck xmlns="{NS}"/>'
    for text in (envelope(body, password="nope"),
                 f'<soap:Envelope xmlns:soap="{ENV}"><soap:Body>{body}</soap:Body></soap:Envelope>'):
        response = post(sim, text)
        assert response.status_code == 500
        assert fault_of(response)[0] == "soap:Client.Authentication"


def test_unknown_operation_is_a_client_fault(sim: str) -> None:
    response = post(sim, envelope(f'<Explode xmlns="{NS}"/>'))
    assert response.status_code == 500 and fault_of(response)[0] == "soap:Client"


def test_entities_are_never_expanded(sim: str) -> None:
    prolog = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    response = post(sim, envelope(f'<AccountGet xmlns="{NS}"><AccountRef>&e;</AccountRef>'
                                  f"</AccountGet>", prolog=prolog))
    assert response.status_code == 500
    code, message = fault_of(response)
    assert code == "soap:Client" and "root:" not in response.text


def test_not_xml_is_a_client_fault(sim: str) -> None:
    response = post(sim, "this is not xml")
    assert response.status_code == 500 and fault_of(response)[0] == "soap:Client"


def test_admin_endpoints(sim: str) -> None:
    assert httpx.post(f"{sim}/admin/requests/RQ99999999/status", json={"status": "DONE"},
                      timeout=5).status_code == 404
    assert httpx.post(f"{sim}/admin/faults", json={"count": 1, "mode": "explode"},
                      timeout=5).status_code == 422
    stats = httpx.get(f"{sim}/admin/stats", timeout=5).json()
    assert {"effects", "requests", "held", "staff_changes", "calls"} <= set(stats)


def test_fault_switch_http_503_then_recovers(sim: str) -> None:
    httpx.post(f"{sim}/admin/faults", json={"count": 1, "mode": "http_503"}, timeout=5)
    body = envelope(f'<SystemCheck xmlns="{NS}"/>')
    assert post(sim, body).status_code == 503
    assert post(sim, body).status_code == 200


def test_store_is_idempotent_on_client_reference(tmp_path: Path) -> None:
    store = RevenuesStore(tmp_path / "s.db")
    store.seed([{"account_ref": "CT00000001", "property_ref": "P000001", "adults": 1, "band": "D",
                 "hold_moves": False, "balance_pence": 0}], [], ["P000001"])
    first, created = store.create("k1", "DISCOUNT", "CT00000001", lambda db: Applied())
    again, created_again = store.create("k1", "DISCOUNT", "CT00000001", lambda db: Applied())
    assert created and not created_again and first == again
    assert store.stats()["effects"] == 1
    with pytest.raises(ReferenceClash):
        store.create("k1", "RELIEF", "CT00000001", lambda db: Applied())

    def refuse(db: object) -> Applied:
        raise SoapFault("Client.NotEligible", "no")
    with pytest.raises(SoapFault):
        store.create("k2", "DISCOUNT", "CT00000001", refuse)
    assert store.find_requests("k2") == [] and store.stats()["effects"] == 1
    store.create("k3/out", "MOVE_OUT", "CT00000001", lambda db: Applied())
    assert [r["client_reference"] for r in store.find_requests("k3")] == ["k3/out"]
    assert store.find_requests("k") == []


def test_store_changes_are_strictly_after_since(tmp_path: Path) -> None:
    store = RevenuesStore(tmp_path / "s.db")
    row, _ = store.create("k", "RELIEF", "NR00000001", lambda db: Applied())
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert store.changes_since(before) == [], "a create is not a staff change"
    change = store.set_status(row["reference"], "CLOSED", "done")
    [seen] = store.changes_since(before)
    assert seen["client_reference"] == "k" and seen["status"] == "CLOSED"
    at = datetime.fromisoformat(change["changed_at"])
    assert store.changes_since(at) == []


def test_rebill_charges_the_liable_days() -> None:
    live = {"band": "D", "status": "LIVE", "single_person_discount": 0}
    assert rebilled_balance(live, date(2026, 4, 1)) == 2_025_00
    assert rebilled_balance({**live, "status": "MOVED_OUT"}, date(2026, 4, 1)) < 10_00
    discounted = rebilled_balance({**live, "single_person_discount": 1}, date(2026, 10, 1))
    assert discounted < rebilled_balance(live, date(2026, 10, 1))


def test_cli_needs_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from simulators.revenues.__main__ import main
    monkeypatch.delenv("REVENUES_SIM_USERNAME", raising=False)
    monkeypatch.delenv("REVENUES_SIM_PASSWORD", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["--db", str(tmp_path / "x.db")])
    assert info.value.code == 2


def test_cli_serves_with_credentials_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "REVENUES_SIM_USERNAME": "sim", "REVENUES_SIM_PASSWORD": "pw"}
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.revenues", "--port", str(port), "--db",
         str(tmp_path / "cli.db"), "--seed-demo"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = post(f"http://127.0.0.1:{port}",
                                envelope(f'<AccountGet xmlns="{NS}"><AccountRef>CT00000002'
                                         f"</AccountRef></AccountGet>"))
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200, response.text
    finally:
        process.terminate()
        process.wait(timeout=10)
