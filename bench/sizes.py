"""How big each bench is: ``full`` for ``make bench``, ``tiny`` for the test suite (shows it runs)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    cases: int
    """Mixed CRM cases through the hub and the bare clients (deliverable 2)."""
    ledger_cases: int
    """Cases through the ledger alone (deliverable 5)."""
    sftp_megabytes: int
    """The batch file uploaded by the SFTP transport and by OpenSSH's sftp."""
    soap_calls: int
    """Calls per SOAP build-and-parse measurement."""
    licensing_rows: int
    latency_cases: int
    """Webhooks one at a time through the real scheduler (deliverable 3; ``--real-stack`` only)."""
    throughput_cases: int
    """Cases through each design on the real scheduler (deliverable 4; ``--real-stack`` only)."""
    batch_size: int = 200


SIZES = {
    "full": Size("full", cases=10_000, ledger_cases=5_000, sftp_megabytes=100, soap_calls=2_000,
                 licensing_rows=2_000, latency_cases=100, throughput_cases=500),
    "small": Size("small", cases=1_000, ledger_cases=1_000, sftp_megabytes=20, soap_calls=500,
                  licensing_rows=300, latency_cases=30, throughput_cases=200),
    "tiny": Size("tiny", cases=60, ledger_cases=60, sftp_megabytes=1, soap_calls=20,
                 licensing_rows=10, latency_cases=3, throughput_cases=20,
                 batch_size=20),
}
