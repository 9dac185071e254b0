"""Settings from a file of ``KEY=value`` lines, for ``hub --env-file``.

The format is what a POSIX shell reads with ``set -a; . FILE; set +a`` (one assignment per line,
values single-quoted as ``shlex.quote`` writes them; blank lines and ``#`` comments allowed), so one
file serves both. ``make up`` writes such a file for its stack (``var/up/hub.env``: the ledger URL
and the simulators' Airflow Connections; readable by its owner only). ``write`` makes one, ``read``
reads one; an unreadable line is an error naming its number (never its value: it may hold a
secret).
"""
from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

MAX_BYTES = 1_000_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class EnvFileError(ValueError):
    """The file cannot be used; the message names the file and line, never a value."""


def read(path: str | os.PathLike[str]) -> dict[str, str]:
    """The assignments in ``path`` (later lines win)."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise EnvFileError(f"{file}: cannot be read ({exc.strerror})") from exc
    if len(data) > MAX_BYTES:
        raise EnvFileError(f"{file}: larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvFileError(f"{file}: not UTF-8") from exc
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export "):].lstrip()
        name, sep, raw = stripped.partition("=")
        if not sep or not _NAME.match(name):
            raise EnvFileError(f"{file}: line {number} is not NAME=value")
        try:
            words = shlex.split(raw, comments=True, posix=True)
        except ValueError as exc:
            raise EnvFileError(f"{file}: line {number} ({name}): unbalanced quotes") from exc
        if len(words) > 1:
            raise EnvFileError(f"{file}: line {number} ({name}): more than one word; quote it")
        values[name] = words[0] if words else ""
    return values


def load(path: str | os.PathLike[str]) -> list[str]:
    """Put the file's settings into ``os.environ`` (overriding); returns their names."""
    values = read(path)
    os.environ.update(values)
    return sorted(values)


def write(path: str | os.PathLike[str], values: Mapping[str, str], *, header: str = "") -> Path:
    """Write ``values`` to ``path``, created readable and writable by its owner only (0600)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for name in sorted(values):
        if not _NAME.match(name):
            raise EnvFileError(f"not a variable name: {name!r}")
        lines.append(f"{name}={shlex.quote(str(values[name]))}")
    tmp = file.with_name(file.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, file)
    return file
