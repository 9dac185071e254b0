"""The hub's record of the outbound files it has returned updates from (a state file on the SFTP
server, in the archive folder: ``.hub-seen-files.json``, a dot-file nobody processes).

Archiving follows the hub's cursor: a file may leave outbound once every line in it is at or
before the ``since`` the hub asks with, *and* the hub has stored what was in it. A file that
arrives late, its lines dated before the cursor, would pass the first test without ever having
been read; so a file is archived only when it was returned in an earlier call whose ``since`` was
older than the current one. The status sync moves its cursor only after storing everything a
call returned, so a newer ``since`` proves the file's lines are in the ledger. Until then the
file is returned again (the hub applies each update once, by its id): nothing is archived unread.

A missing or unreadable state file is an empty one: files are then returned again, never lost.
"""
from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.errors import ConnectorError
from connectors.transports import sftp

log = logging.getLogger(__name__)

MAX_STATE_BYTES = 4 * 1024 * 1024


@dataclass
class SeenFiles:
    path: str
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    """name -> {"digest": sha256 of the content, "since": the ``since`` it was first returned at}"""
    changed: bool = False

    @classmethod
    def load(cls, session: sftp.SftpSession, path: str) -> SeenFiles:
        try:
            raw = session.read(path, max_bytes=MAX_STATE_BYTES)
        except ConnectorError as exc:
            if exc.code != "no-such-path":
                log.warning("benefits: seen-files record not readable (%s); starting afresh",
                            exc.code)
            return cls(path)
        try:
            data: Any = json.loads(raw)
            files = {str(k): {"digest": str(v["digest"]), "since": str(v["since"])}
                     for k, v in data["files"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("benefits: seen-files record is not valid; starting afresh")
            return cls(path)
        return cls(path, files)

    def stored(self, name: str, digest: str, since: datetime) -> bool:
        """True when this content was returned at an earlier, older ``since``."""
        entry = self.files.get(name)
        if entry is None or entry["digest"] != digest:
            return False
        try:
            return datetime.fromisoformat(entry["since"]) < since
        except ValueError:
            return False

    def returned(self, name: str, digest: str, since: datetime) -> None:
        entry = self.files.get(name)
        if entry is None or entry["digest"] != digest:
            self.files[name] = {"digest": digest, "since": since.isoformat()}
            self.changed = True

    def keep_only(self, names: set[str]) -> None:
        """Forget files no longer in outbound (archived, quarantined or removed)."""
        gone = set(self.files) - names
        for name in gone:
            del self.files[name]
        self.changed = self.changed or bool(gone)

    def save(self, session: sftp.SftpSession) -> None:
        if not self.changed:
            return
        folder, _, base = self.path.rpartition("/")
        temp = f"{folder}/.{base}.{secrets.token_hex(4)}.part" if folder else \
            f".{base}.{secrets.token_hex(4)}.part"
        data = json.dumps({"version": 1, "files": self.files}, sort_keys=True).encode()
        try:
            session.write_atomic(data, temp, self.path)
        except ConnectorError as exc:  # nothing is lost: files are only archived later
            log.warning("benefits: seen-files record not saved (%s)", exc.code)
            return
        self.changed = False
