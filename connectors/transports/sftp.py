"""SFTP over SSH with paramiko: known host keys only, timeouts everywhere, verified uploads.

- The server's host key must be in the configured known_hosts file or match the configured host key
  line; an unknown key is a ``PermanentError`` (there is no auto-add or warn-only policy).
- Every SSH/SFTP step has the configured timeout (connect, banner, auth, channel, each SFTP request).
- ``upload_verified`` writes to a temporary name, checks its size and reads it back to compare it
  byte for byte with what was sent, and only then renames it to its final name, so a reader never
  sees a partial file.
- Failures are classified (``classify``): auth, host key and missing folders are permanent; network
  drops, timeouts and SSH protocol errors are transient.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import stat as statmod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY

from connectors.errors import (ConnectorError, PermanentError, TransientError,
                               UnknownOutcomeError, UnreadableAnswer)

log = logging.getLogger(__name__)

CHUNK_SIZE = 32 * 1024
#: paramiko's SFTP read and write request size, which every server takes.
REQUEST_SIZE = 32 * 1024
#: The largest request used when the server says it takes more (``limits@openssh.com``: OpenSSH's
#: sftp-server takes 255 KB): fewer requests and acknowledgements for the same bytes.
LARGEST_REQUEST_SIZE = 255 * 1024
WRITE_SIZE = 256 * 1024
"""How much of a file ``upload_verified`` hands paramiko per write (progress is reported per write)."""
READ_SIZE = 256 * 1024


class UnknownHostKey(paramiko.SSHException):
    """The server's host key is not in the configured known hosts."""


class _RejectUnknownHostKey(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise UnknownHostKey(f"host key for {hostname} ({key.get_name()}) is not known")


@dataclass(frozen=True)
class SftpSettings:
    """Where and how to connect. Exactly as the connector's config provides them."""

    host: str
    port: int
    username: str
    password: str | None = None
    private_key_path: str | None = None
    private_key_passphrase: str | None = None
    known_hosts_path: str | None = None
    host_key: str | None = None
    """A known_hosts line (``[host]:port type base64``) or just ``type base64``."""
    timeout: float = 30.0

    def host_pattern(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def classify(exc: BaseException, what: str) -> ConnectorError:
    """The classified error for an SSH/SFTP failure while doing ``what`` (no personal data)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, UnknownHostKey):
        return PermanentError(f"{what}: server host key is not in known_hosts", code="unknown-host-key")
    if isinstance(exc, paramiko.BadHostKeyException):
        return PermanentError(f"{what}: server host key does not match known_hosts",
                              code="host-key-mismatch")
    if isinstance(exc, paramiko.AuthenticationException):
        return PermanentError(f"{what}: authentication failed", code="auth-failed")
    if isinstance(exc, PermissionError):
        return PermanentError(f"{what}: permission denied", code="permission-denied")
    if isinstance(exc, FileNotFoundError):
        return PermanentError(f"{what}: no such file or folder", code="no-such-path")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TransientError(f"{what}: timed out", code="timeout")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return TransientError(f"{what}: connection refused", code="connection-refused")
    if isinstance(exc, (paramiko.SSHException, EOFError, OSError)):
        return TransientError(f"{what}: connection failed ({type(exc).__name__})", code="connection")
    return TransientError(f"{what}: unexpected {type(exc).__name__}", code="unexpected")


@contextlib.contextmanager
def classified(what: str) -> Iterator[None]:
    """Turn any SSH/SFTP exception in the block into a classified connector error."""
    try:
        yield
    except ConnectorError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure gets classified
        raise classify(exc, what) from exc


def _load_private_key(settings: SftpSettings) -> paramiko.PKey | None:
    if not settings.private_key_path:
        return None
    if not Path(settings.private_key_path).is_file():
        raise PermanentError("private_key_path: file not found", code="bad-private-key")
    try:
        return paramiko.PKey.from_path(settings.private_key_path, settings.private_key_passphrase)
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise PermanentError("private_key_path: cannot read the key (format or passphrase)",
                             code="bad-private-key") from exc


def _install_host_keys(client: paramiko.SSHClient, settings: SftpSettings) -> None:
    keys = client.get_host_keys()
    if settings.known_hosts_path:
        if not Path(settings.known_hosts_path).is_file():
            raise PermanentError("known_hosts_path: file not found", code="no-known-hosts")
        try:
            keys.load(settings.known_hosts_path)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise PermanentError("known_hosts_path: cannot read the file",
                                 code="no-known-hosts") from exc
    if settings.host_key:
        line = settings.host_key.strip()
        if len(line.split()) == 2:
            line = f"{settings.host_pattern()} {line}"
        try:
            entry = HostKeyEntry.from_line(line)
        except (paramiko.SSHException, ValueError) as exc:
            raise PermanentError("host_key: not a known_hosts line", code="bad-host-key") from exc
        if entry is None or entry.key is None:
            raise PermanentError("host_key: not a known_hosts line", code="bad-host-key")
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)
    if not settings.known_hosts_path and not settings.host_key:
        raise PermanentError("known_hosts_path or host_key is required", code="no-known-hosts")


class SftpSession:
    """One SSH connection with an SFTP channel; every request times out."""

    def __init__(self, client: paramiko.SSHClient, sftp: paramiko.SFTPClient) -> None:
        self._client = client
        self.sftp = sftp
        self._request_size: int | None = None

    def request_size(self) -> int:
        """The read/write request size for large transfers: what the server says it takes
        (``limits@openssh.com``), at most ``LARGEST_REQUEST_SIZE``; paramiko's 32 KB when it does
        not say (asked once per connection)."""
        if self._request_size is None:
            self._request_size = REQUEST_SIZE
            try:
                kind, answer = self.sftp._request(CMD_EXTENDED, "limits@openssh.com")
                if kind == CMD_EXTENDED_REPLY and answer is not None:
                    answer.get_int64()                     # max packet length
                    largest_read, largest_write = answer.get_int64(), answer.get_int64()
                    self._request_size = max(REQUEST_SIZE, min(
                        LARGEST_REQUEST_SIZE, largest_read or REQUEST_SIZE,
                        largest_write or REQUEST_SIZE))
            except Exception:  # noqa: BLE001 - no such extension: paramiko's default
                log.debug("sftp server does not state its limits; 32 KB requests")
        return self._request_size

    def active(self) -> bool:
        """The SSH connection is still up (as far as this side knows)."""
        transport = self._client.get_transport()
        return transport is not None and transport.is_active()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sftp.close()
        with contextlib.suppress(Exception):
            self._client.close()

    def __enter__(self) -> "SftpSession":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def list_files(self, folder: str) -> list[paramiko.SFTPAttributes]:
        """Regular files in ``folder`` (sub-folders left out)."""
        with classified(f"list {folder}"):
            entries = self.sftp.listdir_attr(folder)
        return [e for e in entries if e.st_mode is None or statmod.S_ISREG(e.st_mode)]

    def read(self, path: str, *, max_bytes: int | None = None) -> bytes:
        """The file's bytes, read in chunks; past ``max_bytes`` reading stops with
        ``UnreadableAnswer(code="file-too-large")`` (a file that grows while read included)."""
        with classified("read file"):
            with self.sftp.open(path, "rb") as handle:
                size = handle.stat().st_size or 0
                if max_bytes is not None and size > max_bytes:
                    raise UnreadableAnswer(f"file is over the limit of {max_bytes} bytes",
                                           code="file-too-large")
                handle.prefetch(size)   # read ahead what stat promised, no more
                data = bytearray()
                while True:
                    chunk = handle.read(CHUNK_SIZE)
                    if not chunk:
                        return bytes(data)
                    data += chunk
                    if max_bytes is not None and len(data) > max_bytes:
                        raise UnreadableAnswer(f"file went past the limit of {max_bytes} bytes",
                                               code="file-too-large")

    def iter_lines(self, path: str, *, max_bytes: int,
                   max_line_bytes: int = 1024 * 1024) -> Iterator[bytes]:
        """The file's lines (with their line ends), read a chunk at a time and never held whole:
        past ``max_bytes`` read, or a line longer than ``max_line_bytes``, reading stops with
        ``UnreadableAnswer`` (``file-too-large`` / ``line-too-long``). The last line may lack a
        line end. Close the iterator (or read it to the end) to close the file."""
        with classified("read file"):
            handle = self.sftp.open(path, "rb")
        try:
            total, partial = 0, b""
            while True:
                with classified("read file"):
                    chunk = handle.read(CHUNK_SIZE)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise UnreadableAnswer(f"file went past the limit of {max_bytes} bytes",
                                           code="file-too-large")
                pieces = (partial + chunk).split(b"\n")
                partial = pieces.pop()
                for piece in pieces:
                    yield piece + b"\n"
                if len(partial) > max_line_bytes:
                    raise UnreadableAnswer(f"a line is longer than {max_line_bytes} bytes",
                                           code="line-too-long")
            if partial:
                yield partial
        finally:
            with contextlib.suppress(Exception):
                handle.close()

    def write_atomic(self, data: bytes, temp_path: str, final_path: str) -> None:
        """Write a small file under a temporary name, then rename it over ``final_path``."""
        with classified("write file"):
            with self.sftp.open(temp_path, "wb") as handle:
                handle.write(data)
            self.sftp.posix_rename(temp_path, final_path)

    def make_folder(self, path: str) -> None:
        """Create ``path`` if it does not exist."""
        with classified("make folder"):
            try:
                self.sftp.stat(path)
            except FileNotFoundError:
                self.sftp.mkdir(path)

    def remove(self, path: str) -> None:
        with classified("remove file"):
            self.sftp.remove(path)

    def rename(self, source: str, target: str) -> None:
        """Atomic rename that replaces ``target`` (posix-rename extension)."""
        with classified("rename file"):
            self.sftp.posix_rename(source, target)

    def upload_verified(self, data: bytes, temp_path: str, final_path: str, *,
                        progress: Callable[[int], None] | None = None) -> None:
        """Write ``data`` under ``temp_path``, read it back and compare it byte for byte with
        ``data``, rename to ``final_path``.

        A failure before the rename leaves at most a temporary file; a failure during the rename
        raises ``UnknownOutcomeError`` (the file may be in place).
        """
        with classified("upload file"):
            with self.sftp.open(temp_path, "wb") as handle:
                # Pipelined: writes go out without waiting for each acknowledgement (a failed
                # write still raises, at the latest when the file is closed).
                handle.set_pipelined(True)
                handle.MAX_REQUEST_SIZE = self.request_size()
                for offset in range(0, len(data), WRITE_SIZE):
                    handle.write(data[offset:offset + WRITE_SIZE])
                    if progress is not None:
                        progress(offset + min(WRITE_SIZE, len(data) - offset))
            size = self.sftp.stat(temp_path).st_size
        if size != len(data):
            self._discard(temp_path)
            raise TransientError("upload verification failed: size differs", code="verify-size")
        if not self._holds(temp_path, data):
            self._discard(temp_path)
            raise TransientError("upload verification failed: content differs",
                                 code="verify-content")
        try:
            self.sftp.posix_rename(temp_path, final_path)
        except Exception as exc:  # noqa: BLE001 - classified below
            error = classify(exc, "rename uploaded file")
            if isinstance(error, TransientError):
                raise UnknownOutcomeError(error.message, code=error.code) from exc
            raise error from exc

    def _holds(self, path: str, data: bytes) -> bool:
        """The file at ``path`` is exactly ``data``: read back with read-ahead and compared piece
        by piece as it arrives (a byte comparison is stronger than comparing two SHA-256 digests
        and costs far less than hashing both copies)."""
        view = memoryview(data)
        position = 0
        with classified("verify uploaded file"):
            with self.sftp.open(path, "rb") as handle:
                handle.MAX_REQUEST_SIZE = self.request_size()
                handle.prefetch(len(data))   # read ahead what was written, no more
                while True:
                    chunk = handle.read(READ_SIZE)
                    if not chunk:
                        return position == len(data)
                    end = position + len(chunk)
                    if end > len(data) or view[position:end] != chunk:
                        return False
                    position = end

    def _discard(self, path: str) -> None:
        with contextlib.suppress(Exception):
            self.sftp.remove(path)


#: Ciphers offered first: AES-GCM authenticates as it encrypts (no separate MAC pass), which is
#: the cheapest protected channel paramiko has; the rest of paramiko's list follows unchanged.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _transport(sock: object, **kwargs: object) -> paramiko.Transport:
    transport = paramiko.Transport(sock, **kwargs)  # type: ignore[arg-type]
    options = transport.get_security_options()
    offered = tuple(options.ciphers)
    first = tuple(c for c in PREFERRED_CIPHERS if c in offered)
    options.ciphers = first + tuple(c for c in offered if c not in first)
    return transport


def connect(settings: SftpSettings) -> SftpSession:
    """Open an SSH connection and an SFTP channel, or raise a classified error."""
    if not settings.password and not settings.private_key_path:
        raise PermanentError("password or private_key_path is required", code="no-credentials")
    pkey = _load_private_key(settings)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(_RejectUnknownHostKey())
    _install_host_keys(client, settings)
    try:
        with classified(f"connect to {settings.host}:{settings.port}"):
            client.connect(settings.host, port=settings.port, username=settings.username,
                           password=settings.password, pkey=pkey, timeout=settings.timeout,
                           banner_timeout=settings.timeout, auth_timeout=settings.timeout,
                           channel_timeout=settings.timeout, look_for_keys=False,
                           allow_agent=False, transport_factory=_transport)
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(settings.timeout)
    except BaseException:
        client.close()
        raise
    log.debug("sftp connected to %s:%s", settings.host, settings.port)
    return SftpSession(client, sftp)
