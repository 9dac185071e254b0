"""Memory and time to read a large SOAP answer through the hub's transport (limited, incremental).

    .venv/bin/python bench/answer_memory.py [--mb 64] [--limit-mb 10] [--runs 3]

A local HTTP server (a real socket) answers a SOAP envelope of ``--mb`` megabytes, streamed in
chunks. Each run, in a fresh child process, calls ``soap_call`` once and reports the peak resident
memory growth (ru_maxrss) and the wall time: once with the default limit (the answer is cut off
at ``--limit-mb``: an ``UnreadableAnswer``) and once with a limit above the answer (read and
parsed whole). Prints each run and the median. Nothing here is a test: it only reports figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NS = "http://revenues.example.gov.uk/northgate/v1"

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from connectors.errors import ConnectorError
from connectors.revenues.northgate import WSDL_PATH
from connectors.transports.soap import soap_call, soap_client
client = soap_client(WSDL_PATH, {endpoint!r}, timeout=60, max_answer_bytes={limit})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    answer = soap_call(client, "ChangesGet", Since="2026-01-01T00:00:00Z")
    outcome = f"read {{len(answer.children('Change'))}} changes"
except ConnectorError as exc:
    outcome = f"{{type(exc).__name__}} {{exc.code}}"
seconds = time.perf_counter() - started
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({{"outcome": outcome, "seconds": seconds, "rss_growth_mb": growth / 1024}}))
"""


def serve(size: int) -> tuple[ThreadingHTTPServer, str]:
    change = (f"<Change><ChangeId>C</ChangeId><Reference>RQ1</Reference><ClientReference>k"
              f"</ClientReference><RequestType>T</RequestType><Status>S</Status>"
              f"<ChangedAt>2026-01-01T00:00:00Z</ChangedAt></Change>").encode()
    head = (f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            f'<ChangesGetResponse xmlns="{NS}">').encode()
    tail = b"</ChangesGetResponse></soap:Body></soap:Envelope>"
    count = max(1, (size - len(head) - len(tail)) // len(change))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for part in [head] + [change * 1000] * (count // 1000) + [tail]:
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass   # the client stopped reading at its limit

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/soap"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--limit-mb", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server, endpoint = serve(args.mb * 1024 * 1024)
    try:
        for label, limit in (("cut off at the limit", args.limit_mb * 1024 * 1024),
                             ("limit above the answer", (args.mb + 8) * 1024 * 1024)):
            results = []
            for run in range(args.runs):
                code = CHILD.format(repo=str(REPO), endpoint=endpoint, limit=limit)
                out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, timeout=600, check=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                results.append(result)
                print(f"{args.mb} MB answer, {label}, run {run + 1}: {result['outcome']}, "
                      f"{result['seconds']:.2f} s, peak RSS growth {result['rss_growth_mb']:.0f} MB")
            print(f"  median: {statistics.median(r['seconds'] for r in results):.2f} s, "
                  f"{statistics.median(r['rss_growth_mb'] for r in results):.0f} MB")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
