"""Each back-office system in the bench: a fresh simulator in its own process, the hub's connector
wired to it, and the bare client that sends the same back-office changes with prepared payloads.

The bare client's payloads are the very requests the connector sent, recorded on the way out
(SOAP envelopes, batch files, licensing rows), replayed against a second, identically seeded back
office: so both sides make exactly the same changes, and the difference is the hub's own cost.

- SOAP (revenues, waste): one keep-alive ``http.client`` connection, each envelope POSTed as bytes
  (the waste token is swapped for the fresh back office's own).
- SFTP (benefits): one SSH connection, one put per batch file.
- SQL (licensing): the same party and application rows in one transaction with ``executemany``.
"""
from __future__ import annotations

import contextlib
import http.client
import io
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from requests.adapters import HTTPAdapter

from connectors.base import Connector
from demo.stack import Process, Stack, free_port

USERNAME, PASSWORD = "bench", "bench-password-1"
#: ``--lanes``: the SOAP connectors' ``concurrent_sends`` in the ceiling (None: their default).
LANES: int | None = None


def _lanes() -> dict[str, int]:
    return {} if LANES is None else {"concurrent_sends": LANES}


# -- SOAP -----------------------------------------------------------------------------------------
@dataclass
class Recorded:
    url: str
    body: bytes
    headers: dict[str, str]
    answer: tuple[int, bytes] | None = None


_VERDICT = re.compile(rb"(?:Result[^>]*>|faultcode[^>]*>)([^<]*)<")


def verdict(status: int, body: bytes) -> tuple[int, bytes]:
    """What an answer said, for checking that the bare side got the same answers: the HTTP
    status and the first Bartec ``Result`` code or SOAP fault code in it."""
    found = _VERDICT.search(body)
    return status, found.group(1) if found else b""


class RecordingAdapter(HTTPAdapter):
    """Keeps every request body the connector sends (and the status it got) for the bare replay."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Recorded] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        record = Recorded(str(request.url), body, {k: v for k, v in request.headers.items()
                                                   if k.lower() in ("content-type", "soapaction")})
        self.requests.append(record)
        response = super().send(request, **kwargs)
        record.answer = verdict(response.status_code, response.content)
        return response


def replay_soap(recorded: list[Recorded], base_url: str,
                token_swap: tuple[bytes, bytes] | None = None) -> list[tuple[int, bytes]]:
    """POST each recorded envelope over one keep-alive connection; the verdicts, in order."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    statuses = []
    try:
        for item in recorded:
            body = item.body.replace(*token_swap) if token_swap else item.body
            connection.request("POST", urlsplit(item.url).path, body=body, headers=item.headers)
            response = connection.getresponse()
            statuses.append(verdict(response.status, response.read()))
    finally:
        connection.close()
    return statuses


class SoapSystem:
    """A SOAP simulator process per side (hub, bare)."""

    system_id = ""
    module = ""
    env_prefix = ""

    def __init__(self, stack: Stack, workdir: Path) -> None:
        self.stack, self.workdir = stack, workdir
        self.recorder = RecordingAdapter()
        self.warmup: list[Recorded] = []
        self.mismatch = ""

    def warmed(self) -> None:
        """The connector's check (WSDL, token) is done: what follows is the timed traffic."""
        self.warmup = list(self.recorder.requests)
        self.recorder.requests.clear()

    def start(self, side: str) -> str:
        port = free_port()
        db = self.workdir / f"{self.system_id}-{side}-{uuid.uuid4().hex[:6]}.db"
        self.stack.start(Process(f"{self.system_id}-{side}",
                                 ["-m", self.module, "--host", "127.0.0.1", "--port", str(port),
                                  "--db", str(db), "--seed-demo"],
                                 port=port, env={f"{self.env_prefix}_USERNAME": USERNAME,
                                                 f"{self.env_prefix}_PASSWORD": PASSWORD}))
        return f"http://127.0.0.1:{port}"

    def connector(self) -> Connector:
        base = self.start("hub")
        connector = self._connector(f"{base}/soap")
        self._client(connector).transport.session.mount("http://", self.recorder)
        return connector

    def _connector(self, endpoint: str) -> Connector:
        raise NotImplementedError

    def _client(self, connector: Connector) -> Any:
        raise NotImplementedError

    def prepare_bare(self) -> Any:
        return self.start("bare"), list(self.recorder.requests)

    def run_bare(self, prepared: Any) -> int:
        base, recorded = prepared
        statuses = replay_soap(recorded, base, self._token_swap(base, self.warmup + recorded))
        hub = [r.answer for r in recorded]
        if statuses != hub:
            differ = sum(a != b for a, b in zip(statuses, hub, strict=True))
            self.mismatch = f"CHECK: {differ} of {len(hub)} bare answers differ from the hub's"
        return len(statuses)

    def _token_swap(self, base: str, recorded: list[Recorded]) -> tuple[bytes, bytes] | None:
        return None

    def requests_sent(self) -> int:
        return len(self.recorder.requests)


class RevenuesSystem(SoapSystem):
    system_id = "revenues_northgate"
    module = "simulators.revenues"
    env_prefix = "REVENUES_SIM"

    def _connector(self, endpoint: str) -> Connector:
        from connectors.revenues.northgate import NorthgateConfig, NorthgateConnector

        return NorthgateConnector(NorthgateConfig(endpoint=endpoint, username=USERNAME,
                                                  password=PASSWORD, timeout_seconds=30,
                                                  **_lanes()))

    def _client(self, connector: Connector) -> Any:
        from connectors.revenues.northgate import WSDL_PATH
        from connectors.transports.soap import soap_client

        config = connector.config   # the connector's own client: the same arguments, limits included
        return soap_client(WSDL_PATH, config.endpoint, timeout=config.timeout_seconds,
                           username=config.username, password=config.password.get_secret_value(),
                           max_answer_bytes=config.max_answer_bytes,
                           max_answer_depth=config.max_answer_depth)


_TOKEN = re.compile(rb"TokenString[^>]*>([^<]+)<")


class WasteSystem(SoapSystem):
    system_id = "waste_bartec"
    module = "simulators.waste"
    env_prefix = "WASTE_SIM"

    def _connector(self, endpoint: str) -> Connector:
        from connectors.waste.bartec import BartecConfig, BartecConnector

        return BartecConnector(BartecConfig(endpoint=endpoint, username=USERNAME,
                                            password=PASSWORD, timeout_seconds=30, **_lanes()))

    def _client(self, connector: Connector) -> Any:
        return connector._client()  # type: ignore[attr-defined]   # the connector's own client

    def _token_swap(self, base: str, recorded: list[Recorded]) -> tuple[bytes, bytes] | None:
        """The hub's token (from its back office) -> a token from the bare side's back office
        (its Authenticate call is part of the replay, untimed here: it is made once up front)."""
        login = next((r for r in recorded if b"Authenticate" in r.body), None)
        if login is None:
            return None
        parts = urlsplit(base)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            connection.request("POST", urlsplit(login.url).path, body=login.body,
                               headers=login.headers)
            fresh = _TOKEN.search(connection.getresponse().read())
        finally:
            connection.close()
        used = next((m for r in recorded if (m := re.search(rb"<(?:\w+:)?token>([^<]+)<", r.body))),
                    None)
        if fresh is None or used is None:
            return None
        return used.group(1), fresh.group(1)


# -- SFTP ---------------------------------------------------------------------------------------
class BenefitsSystem:
    """The benefits exchange folder behind a real OpenSSH sshd (its own process)."""

    system_id = "benefits_academy"

    def __init__(self, sshd: Any, workdir: Path) -> None:
        self.sshd, self.workdir = sshd, workdir
        self.mismatch = ""
        self._hub_root: Path | None = None

    def _exchange(self, side: str) -> Path:
        from simulators.benefits.backoffice import BenefitsBackOffice
        from simulators.benefits.sample import claims

        root = self.workdir / f"benefits-{side}-{uuid.uuid4().hex[:6]}"
        office = BenefitsBackOffice(root / "exchange", root / "backoffice.db")
        office.setup()
        office.seed(claims())
        self.sshd.use_root(office.root)
        return Path(office.root)

    def connector(self) -> Connector:
        from connectors.benefits.academy import AcademyConfig, AcademyConnector

        self._hub_root = self._exchange("hub")
        return AcademyConnector(AcademyConfig(
            host=self.sshd.host, port=self.sshd.port, username=self.sshd.username,
            private_key_path=str(self.sshd.client_key_path),
            known_hosts_path=str(self.sshd.known_hosts_path), timeout_seconds=30))

    def prepare_bare(self) -> list[tuple[str, bytes]]:
        assert self._hub_root is not None
        files = sorted((self._hub_root / "inbound").iterdir())
        prepared = [(f.name, f.read_bytes()) for f in files if f.is_file()]
        self._exchange("bare")
        return prepared

    def run_bare(self, prepared: list[tuple[str, bytes]]) -> int:
        import paramiko

        client = paramiko.SSHClient()
        client.load_host_keys(str(self.sshd.known_hosts_path))
        client.connect(self.sshd.host, port=self.sshd.port, username=self.sshd.username,
                       key_filename=str(self.sshd.client_key_path), look_for_keys=False,
                       allow_agent=False, timeout=30)
        try:
            sftp = client.open_sftp()
            for name, data in prepared:
                sftp.putfo(io.BytesIO(data), f"inbound/{name}")
        finally:
            client.close()
        return len(prepared)

    def requests_sent(self) -> int:
        assert self._hub_root is not None
        return sum(1 for f in (self._hub_root / "inbound").iterdir() if f.is_file())


# -- SQL ----------------------------------------------------------------------------------------
class LicensingSystem:
    """The licensing system's own database on PostgreSQL (its own process)."""

    system_id = "licensing_uniform"

    def __init__(self, stack: contextlib.ExitStack, admin_url: str) -> None:
        self.stack, self.admin_url = stack, admin_url
        self.mismatch = ""
        self._hub_url: str | None = None

    def _database(self) -> str:
        from simulators.licensing.backoffice import LicensingBackOffice
        from tests.support.databases import fresh_database

        url = self.stack.enter_context(fresh_database(self.admin_url, "hub_bench_lic"))
        office = LicensingBackOffice(url)
        office.install()
        office.seed_demo()
        office.close()
        return url

    def connector(self) -> Connector:
        from connectors.licensing.uniform import UniformConfig, UniformConnector

        self._hub_url = self._database()
        connector = UniformConnector(UniformConfig(url=self._hub_url, timeout_seconds=30))
        self.stack.callback(connector.close)
        connector.check()   # its pool holds a connection before the clock starts, as the bare one
        return connector

    def prepare_bare(self) -> Any:
        """The hub's rows read back from its database, a fresh identically seeded database for
        the bare side, its tables reflected and a connection open (none of it timed)."""
        assert self._hub_url is not None
        hub = sa.create_engine(self._hub_url)
        try:
            with hub.connect() as conn:
                metadata = sa.MetaData()
                tables = {name: sa.Table(name, metadata, autoload_with=conn)
                          for name in ("LIC_PARTY", "LIC_APPLICATION", "LIC_SEQUENCE")}
                rows = {name: [dict(r) for r in conn.execute(
                    sa.select(tables[name]).order_by(*tables[name].primary_key.columns)
                ).mappings()] for name in ("LIC_PARTY", "LIC_APPLICATION")}
                sequence = conn.execute(sa.select(tables["LIC_SEQUENCE"].c.NEXT_VALUE).where(
                    tables["LIC_SEQUENCE"].c.SEQ_NAME == "LICAPP")).scalar()
        finally:
            hub.dispose()
        engine = sa.create_engine(self._database())
        self.stack.callback(engine.dispose)
        connection = engine.connect()
        self.stack.callback(connection.close)
        return connection, tables, rows, int(sequence or 0)

    def run_bare(self, prepared: Any) -> int:
        connection, tables, rows, sequence = prepared
        with connection.begin():
            for name in ("LIC_PARTY", "LIC_APPLICATION"):
                if rows[name]:
                    connection.execute(tables[name].insert(), rows[name])
            sequence_table = tables["LIC_SEQUENCE"]
            connection.execute(sequence_table.update()
                               .where(sequence_table.c.SEQ_NAME == "LICAPP")
                               .values(NEXT_VALUE=sequence))
        return len(rows["LIC_APPLICATION"])

    def requests_sent(self) -> int:
        return 0


@dataclass
class Timed:
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def timed() -> Iterator[Timed]:
    result = Timed()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start
