"""The files ``hub new-connector --transport soap`` writes, where they differ from the REST ones
(the operations and the mapping are the same). The back office speaks document/literal SOAP 1.1
with a WS-Security UsernameToken, as connectors/revenues/northgate.py and connectors/waste/bartec.py
do: zeep builds the requests from the WSDL kept in the repository, the hub's tolerant reader
(``connectors.transports.xmlreader.Node``) reads the answers. The scaffold writes a small WSDL
(``connectors/<domain>/wsdl/<system>.wsdl``) that the simulator stub serves too (it reads the
file; it imports no connector code).
"""
from __future__ import annotations

from hub.scaffold_harness import KIT_COMMANDS, SUITE

CONNECTOR = '''"""$title over SOAP (written by `hub new-connector`): zeep writes, the tolerant reader reads.
TODO(vendor): the WSDL's operations, element names, status words and actors; docs/connectors.md."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connectors.base import Command, Connector, Outcome, OutcomeStatus, SecretConfig, Update
from connectors.errors import UnreadableAnswer, unknown_outcome_if_unreadable
from connectors.$domain.$operations_module import OPERATIONS
from connectors.transports.soap import soap_call, soap_client
from connectors.transports.xmlreader import Node

log = logging.getLogger(__name__)
WSDL_PATH = Path(__file__).resolve().parent / "wsdl" / "$system.wsdl"   # TODO(vendor): theirs
CLOSED = frozenset({"COMPLETED", "CANCELLED"})   # TODO(vendor): statuses that close the case


class ${cls}Config(SecretConfig):
    connection_fields = {"host": "endpoint", "login": "username", "password": "password"}
    endpoint: str   # the full SOAP URL


class ${cls}Connector(Connector[${cls}Config]):
    system = "$system_id"
    Config = ${cls}Config
    operations = OPERATIONS

    def _call(self, operation: str, /, *, write: bool = False, **params: Any) -> Node:
        client = soap_client(WSDL_PATH, self.config.endpoint, timeout=self.config.timeout_seconds,
                             username=self.config.username,
                             password=self.config.password.get_secret_value(),
                             max_answer_bytes=self.config.max_answer_bytes,
                             max_answer_depth=self.config.max_answer_depth)
        return soap_call(client, operation, write=write, **params)

    def check(self) -> None:
        self._call("Ping")   # TODO(vendor): a cheap authenticated call

    def submit(self, commands: Sequence[Command]) -> list[Outcome]:
        return self.submit_each(commands, self._apply)

    def _apply(self, command: Command) -> Outcome:
        body = self.validate(command).model_dump(exclude_none=True)
        return self.create_once(command, lambda: self._found(command.key),
                                lambda: self._create(command, body))

    def _create(self, command: Command, body: dict[str, Any]) -> Outcome:
        # TODO(vendor): the create operation and its element names
        node = self._call("RequestCreate", write=True, ClientReference=command.key,
                          SubjectRef=body["subject_ref"], Description=body["description"],
                          ContactName=body.get("contact_name"))
        with unknown_outcome_if_unreadable("RequestCreate"):
            reference = node.need("Request").reference("Reference")
        log.info("%s: %s created %s", self.system_id(), command.operation, reference)
        return Outcome(command.key, OutcomeStatus.CONFIRMED, reference=reference)

    def _found(self, key: str) -> Outcome | None:
        for node in self._call("RequestFind", ClientReference=key).children("Request"):
            if node.text("ClientReference") == key and node.text("Reference"):
                return Outcome(key, OutcomeStatus.CONFIRMED, reference=node.reference("Reference"))
        return None

    def fetch_updates(self, since: datetime) -> list[Update]:
        """Staff changes after ``since`` (strict); the hub's own and unreadable ones are not."""
        since = since.replace(tzinfo=since.tzinfo or timezone.utc).astimezone(timezone.utc)
        answer = self.retrying()(self._call, "ChangesGet", Since=since)
        updates = []
        for change in answer.children("Change"):
            try:
                if change.text("ChangedBy") == "api":   # TODO(vendor): how it names the hub
                    continue
                changed = change.datetime("ChangedAt", required=True)
                status = change.status("Status")
                update = Update(system=self.system_id(), update_id=change.reference("ChangeId"),
                                reference=change.reference("Reference"), status=status,
                                changed_at=changed.astimezone(timezone.utc),  # type: ignore[union-attr]
                                key=change.text("ClientReference"),
                                crm_status="closed" if status in CLOSED else "open")
            except UnreadableAnswer as exc:
                self.set_aside(operation="ChangesGet", entry=change.path, field=exc.field,
                               reason=exc.message, code=exc.code)
                continue
            if update.changed_at > since:
                updates.append(update)
        return sorted(updates, key=lambda u: (u.changed_at, u.update_id))
'''

CONTRACT_TEST = '''"""The contract suite against the $title simulator (written by `hub new-connector`)."""
from __future__ import annotations

from connectors.base import Command
from connectors.$domain.$system import ${cls}Connector
from connectors.testing import ConnectorContractSuite
from simulators.$domain.$simulator_module import create_app
from tests.support.harness import SimulatorHarness

USERNAME, PASSWORD = "hub", "$system-test-password"


class ${cls}Harness(SimulatorHarness):
    system_id = "$system_id"
    connector_class = ${cls}Connector
    fault_mode = "server_fault"
    personal_values = ("Alex Testperson-Example",)   # every personal value command() carries

    def settings(self) -> dict[str, object]:
        return {"endpoint": f"{self.url}/soap", "username": USERNAME, "password": PASSWORD}

''' + KIT_COMMANDS + '''

served, contract_harness = ${cls}Harness.fixtures(
    lambda tmp: create_app(tmp / "sim.db", username=USERNAME, password=PASSWORD))


''' + SUITE

WSDL = '''<?xml version="1.0" encoding="UTF-8"?>
<!--
  $title (a stub written by `hub new-connector`): document/literal SOAP 1.1, WS-Security
  UsernameToken (PasswordText) on every call. A repeated ClientReference answers the request the
  back office holds and applies nothing new.
  TODO(vendor): replace with the vendor's own WSDL (the connector and the simulator both read it).
-->
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
                  xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
                  xmlns:xsd="http://www.w3.org/2001/XMLSchema"
                  xmlns:tns="urn:example:$system_id:v1"
                  targetNamespace="urn:example:$system_id:v1" name="$cls">
  <wsdl:types>
    <xsd:schema targetNamespace="urn:example:$system_id:v1" elementFormDefault="qualified">
      <xsd:complexType name="Request">
        <xsd:sequence>
          <xsd:element name="Reference" type="xsd:string"/>
          <xsd:element name="ClientReference" type="xsd:string"/>
          <xsd:element name="Status" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Change">
        <xsd:sequence>
          <xsd:element name="ChangeId" type="xsd:string"/>
          <xsd:element name="Reference" type="xsd:string"/>
          <xsd:element name="ClientReference" type="xsd:string" minOccurs="0"/>
          <xsd:element name="Status" type="xsd:string"/>
          <xsd:element name="ChangedBy" type="xsd:string"/>
          <xsd:element name="ChangedAt" type="xsd:dateTime"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:element name="Ping"><xsd:complexType><xsd:sequence/></xsd:complexType></xsd:element>
      <xsd:element name="PingResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="Version" type="xsd:string" minOccurs="0"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="RequestCreate"><xsd:complexType><xsd:sequence>
        <xsd:element name="ClientReference" type="xsd:string"/>
        <xsd:element name="SubjectRef" type="xsd:string"/>
        <xsd:element name="Description" type="xsd:string"/>
        <xsd:element name="ContactName" type="xsd:string" minOccurs="0"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="RequestCreateResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="Request" type="tns:Request"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="RequestFind"><xsd:complexType><xsd:sequence>
        <xsd:element name="ClientReference" type="xsd:string"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="RequestFindResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="Request" type="tns:Request" minOccurs="0" maxOccurs="unbounded"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="ChangesGet"><xsd:complexType><xsd:sequence>
        <xsd:element name="Since" type="xsd:dateTime"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="ChangesGetResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="Change" type="tns:Change" minOccurs="0" maxOccurs="unbounded"/>
      </xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </wsdl:types>
$messages
  <wsdl:portType name="${cls}PortType">
$port_operations
  </wsdl:portType>
  <wsdl:binding name="${cls}Binding" type="tns:${cls}PortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
$binding_operations
  </wsdl:binding>
  <wsdl:service name="${cls}Service">
    <wsdl:port name="${cls}Port" binding="tns:${cls}Binding">
      <soap:address location="http://localhost/soap"/>
    </wsdl:port>
  </wsdl:service>
</wsdl:definitions>
'''

SOAP_OPERATIONS = ("Ping", "RequestCreate", "RequestFind", "ChangesGet")


def wsdl_values(system_id: str) -> dict[str, str]:
    """The WSDL's repetitive parts (messages, port type and binding entries), per operation."""
    messages, port, binding = [], [], []
    for op in SOAP_OPERATIONS:
        for part in (op, f"{op}Response"):
            messages.append(f'  <wsdl:message name="{part}"><wsdl:part name="parameters" '
                            f'element="tns:{part}"/></wsdl:message>')
        port.append(f'    <wsdl:operation name="{op}"><wsdl:input message="tns:{op}"/>'
                    f'<wsdl:output message="tns:{op}Response"/></wsdl:operation>')
        binding.append(f'    <wsdl:operation name="{op}">\n      <soap:operation soapAction='
                       f'"urn:example:{system_id}:v1/{op}" style="document"/>\n      '
                       '<wsdl:input><soap:body use="literal"/></wsdl:input>\n      '
                       '<wsdl:output><soap:body use="literal"/></wsdl:output>\n    </wsdl:operation>')
    return {"messages": "\n".join(messages), "port_operations": "\n".join(port),
            "binding_operations": "\n".join(binding)}


SIMULATOR = '''"""A simulator of $title (a stub written by `hub new-connector`) on simulators/soap.py and
simulators/kit.py: SOAP at ``/soap`` (WSDL at ``/soap?wsdl``), WS-Security UsernameToken.

TODO(vendor): answer in the vendor's documented shapes (operations, elements, faults), from its
WSDL and documentation or recorded answers, never from the connector (simulators import no
connector; the WSDL is read as a file). The kit gives it the admin API (``/admin/stats``,
``/admin/faults``, ``/admin/clock``, ``/admin/records/{reference}/status``) and transient faults.
"""
from __future__ import annotations

import hmac
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from lxml import etree

from simulators.kit import Clock, SqliteState, admin_router, locked
from simulators.soap import FaultSwitch, SoapFault, SoapRequest, child_text, soap_app, username_token

WSDL = Path(__file__).resolve().parents[2] / "connectors" / "$domain" / "wsdl" / "$system.wsdl"
NS = "urn:example:$system_id:v1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (reference TEXT PRIMARY KEY, client_reference TEXT UNIQUE,
    subject_ref TEXT NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT NOT NULL,
    status TEXT NOT NULL, actor TEXT NOT NULL, changed_at TEXT NOT NULL);
"""


class Store(SqliteState):
    def __init__(self, path: Path, clock: Clock) -> None:
        super().__init__(path, SCHEMA)
        self.clock = clock

    def create(self, client_reference: str, subject_ref: str) -> dict[str, Any]:
        """The new request, or the one already held for ``client_reference``."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM requests WHERE client_reference = ?",
                             (client_reference,)).fetchone()
            if row is None:
                count = db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
                reference = f"SR{count + 1:07d}"
                db.execute("INSERT INTO requests VALUES (?, ?, ?, 'OPEN')",
                           (reference, client_reference, subject_ref))
                db.execute("INSERT INTO changes (reference, status, actor, changed_at) "
                           "VALUES (?, 'OPEN', 'api', ?)", (reference, self.clock.stamp()))
                row = db.execute("SELECT * FROM requests WHERE reference = ?",
                                 (reference,)).fetchone()
        return dict(row)

    @locked
    def find(self, client_reference: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM requests WHERE client_reference = ?", (client_reference,))]

    @locked
    def changes(self, since: datetime) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT c.*, r.client_reference FROM changes c JOIN requests r "
                               "ON r.reference = c.reference ORDER BY c.id").fetchall()
        return [dict(r) for r in rows if datetime.fromisoformat(r["changed_at"]) > since]

    def staff_change(self, reference: str, status: str, note: str | None) -> dict[str, Any]:
        with self.transaction() as db:
            if not db.execute("UPDATE requests SET status = ? WHERE reference = ?",
                              (status.upper(), reference)).rowcount:
                raise LookupError(reference)
            db.execute("INSERT INTO changes (reference, status, actor, changed_at) "
                       "VALUES (?, ?, 'staff', ?)", (reference, status.upper(), self.clock.stamp()))
        return {"reference": reference, "status": status.upper()}

    @locked
    def stats(self) -> dict[str, int]:
        return {"effects": self.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]}


def _element(name: str, parent: etree._Element | None = None, text: str | None = None,
             ) -> etree._Element:
    node = (etree.Element(f"{{{NS}}}{name}", nsmap={None: NS}) if parent is None
            else etree.SubElement(parent, f"{{{NS}}}{name}"))
    node.text = text
    return node


def _request(parent: etree._Element, row: dict[str, Any]) -> None:
    node = _element("Request", parent)
    for name, column in (("Reference", "reference"), ("ClientReference", "client_reference"),
                         ("Status", "status")):
        _element(name, node, row[column])


def _needed(request: SoapRequest, name: str, limit: int = 200) -> str:
    value = child_text(request.body, name)
    if not value or len(value) > limit:
        raise SoapFault("Client.InvalidField", f"{name} is missing or too long")
    return value


def create_app(db_path: Path, *, username: str, password: str) -> FastAPI:
    clock, faults = Clock(), FaultSwitch()
    store = Store(Path(db_path), clock)

    def authenticate(request: SoapRequest) -> None:
        token = username_token(request) or ("", "")
        if not (hmac.compare_digest(token[0].encode(), username.encode())
                and hmac.compare_digest(token[1].encode(), password.encode())):
            raise SoapFault("Client.Authentication", "authentication failed")

    def ping(request: SoapRequest) -> etree._Element:
        answer = _element("PingResponse")
        _element("Version", answer, "1.0")
        return answer

    def create(request: SoapRequest) -> etree._Element:
        subject = _needed(request, "SubjectRef", 20)
        _needed(request, "Description", 2000)
        if subject.startswith("X"):   # TODO(vendor): what the system refuses, and its fault
            raise SoapFault("Client.UnknownSubject", "SubjectRef is not a known subject")
        answer = _element("RequestCreateResponse")
        _request(answer, store.create(_needed(request, "ClientReference"), subject))
        return answer

    def find(request: SoapRequest) -> etree._Element:
        answer = _element("RequestFindResponse")
        for row in store.find(_needed(request, "ClientReference")):
            _request(answer, row)
        return answer

    def changes(request: SoapRequest) -> etree._Element:
        try:
            since = datetime.fromisoformat(_needed(request, "Since", 64))
        except ValueError:
            raise SoapFault("Client.InvalidField", "Since is not a date and time") from None
        answer = _element("ChangesGetResponse")
        for row in store.changes(since.replace(tzinfo=since.tzinfo or timezone.utc)):
            change = _element("Change", answer)
            for name, value in (("ChangeId", f"CH{row['id']:08d}"), ("Reference", row["reference"]),
                                ("ClientReference", row["client_reference"]),
                                ("Status", row["status"]), ("ChangedBy", row["actor"]),
                                ("ChangedAt", row["changed_at"])):
                _element(name, change, value)
        return answer

    app = soap_app(wsdl_text=WSDL.read_text(encoding="utf-8"), authenticate=authenticate,
                   handlers={"Ping": ping, "RequestCreate": create, "RequestFind": find,
                             "ChangesGet": changes}, title="$title", faults=faults)
    app.include_router(admin_router(stats=store.stats, faults=faults, clock=clock,
                                    staff_change=store.staff_change))
    return app
'''
