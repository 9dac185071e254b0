"""Findings from connectors (a list entry set aside, an answer flagged as a security risk) become
operations work items: once per system, operation, entry and field, so a bad entry the back office
sends on every poll opens one item, not one per run."""
from __future__ import annotations

import hashlib
import logging

from connectors.base import Finding
from hub.ledger.db import session_scope
from hub.workitems import OPERATIONS_TEAM, open_work_item

log = logging.getLogger(__name__)

KINDS = {"entry_set_aside": "answer_entry_set_aside", "security": "security_flag",
         "file_quarantined": "file_quarantined"}


def dedupe_key(finding: Finding) -> str:
    identity = "\x1f".join([finding.system, finding.kind, finding.operation, finding.entry,
                            finding.field or "", finding.code or ""])
    return f"finding:{finding.system}:{hashlib.sha256(identity.encode()).hexdigest()[:32]}"


def record_finding(finding: Finding, *, url: str | None = None) -> None:
    """Open (once) the operations work item for a finding. Findings carry no personal data."""
    if finding.kind == "security":
        reason = (f"{finding.system}: an answer to {finding.operation} was refused as a possible "
                  f"attack ({finding.code}). Check the connection path (proxy, TLS, endpoint) "
                  f"before it is used again. {finding.reason}")
    elif finding.kind == "file_quarantined":
        reason = (f"{finding.system}: a file from the back office could not be read and was "
                  f"set aside: {finding.entry} ({finding.code}). {finding.reason}. Ask the "
                  "supplier to resend it corrected; nothing in it was applied.")
    else:
        reason = (f"{finding.system}: one entry of the answer to {finding.operation} was set "
                  f"aside and the rest processed: {finding.entry}, field "
                  f"{finding.field or '(unknown)'} ({finding.code}). {finding.reason}")
    with session_scope(url) as session:
        open_work_item(session, dedupe_key=dedupe_key(finding),
                       kind=KINDS.get(finding.kind, finding.kind)[:40], system=finding.system,
                       team=OPERATIONS_TEAM, reason=reason[:4000])
    log.warning("%s: %s in %s (%s, field %s): operations work item", finding.system,
                finding.kind, finding.operation, finding.entry, finding.field or "-")


def reporter(url: str | None = None):  # noqa: ANN201 - a Reporter
    """A ``Connector.report`` that records findings in the ledger at ``url``."""
    return lambda finding: record_finding(finding, url=url)
