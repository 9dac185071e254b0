"""A small in-process SFTP server (paramiko) over a local folder, for the demo.

Tests use a real OpenSSH sshd (tests/support/sshd.py); this server lets the demo run without one.
Password authentication only; every path is confined to the root folder.
"""
from __future__ import annotations

import hmac
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

import paramiko
from paramiko.sftp import SFTP_OK

log = logging.getLogger(__name__)


class _Auth(paramiko.ServerInterface):
    def __init__(self, username: str, password: str) -> None:
        self._username = username
        self._password = password

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        ok = hmac.compare_digest(username.encode(), self._username.encode()) and \
            hmac.compare_digest(password.encode(), self._password.encode())
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(paramiko.SFTPHandle):
    def __init__(self, path: Path, flags: int, handle: Any) -> None:
        super().__init__(flags)
        self._path = path
        self.readfile = handle
        self.writefile = handle

    def stat(self) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK


class _FolderSFTP(paramiko.SFTPServerInterface):
    """SFTP requests served from ``root``; the client's ``/`` and ``.`` are the root."""

    def __init__(self, server: paramiko.ServerInterface, *args: Any, root: Path, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self._root = Path(root).resolve()

    def _real(self, path: str) -> Path:
        relative = os.path.normpath("/" + path.replace("\\", "/")).lstrip("/")
        real = (self._root / relative).resolve()
        if real != self._root and self._root not in real.parents:
            raise PermissionError(13, "outside root")
        return real

    def canonicalize(self, path: str) -> str:
        return "/" + os.path.normpath("/" + path).lstrip("/")

    def _attempt(self, action: Any) -> Any:
        try:
            return action()
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def list_folder(self, path: str) -> Any:
        def run() -> list[paramiko.SFTPAttributes]:
            folder = self._real(path)
            out = []
            for name in sorted(os.listdir(folder)):
                attr = paramiko.SFTPAttributes.from_stat(os.stat(folder / name))
                attr.filename = name
                out.append(attr)
            return out
        return self._attempt(run)

    def stat(self, path: str) -> Any:
        return self._attempt(lambda: paramiko.SFTPAttributes.from_stat(os.stat(self._real(path))))

    def lstat(self, path: str) -> Any:
        return self._attempt(lambda: paramiko.SFTPAttributes.from_stat(os.lstat(self._real(path))))

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> Any:
        def run() -> _Handle:
            real = self._real(path)
            fd = os.open(real, flags | getattr(os, "O_BINARY", 0), 0o640)
            if flags & os.O_WRONLY:
                mode = "ab" if flags & os.O_APPEND else "wb"
            elif flags & os.O_RDWR:
                mode = "a+b" if flags & os.O_APPEND else "r+b"
            else:
                mode = "rb"
            return _Handle(real, flags, os.fdopen(fd, mode))
        return self._attempt(run)

    def remove(self, path: str) -> int:
        return self._attempt(lambda: os.remove(self._real(path)) or SFTP_OK)

    def rename(self, oldpath: str, newpath: str) -> int:
        def run() -> int:
            target = self._real(newpath)
            if target.exists():
                raise FileExistsError(17, "exists")
            os.rename(self._real(oldpath), target)
            return SFTP_OK
        return self._attempt(run)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self._attempt(lambda: os.replace(self._real(oldpath), self._real(newpath)) or SFTP_OK)

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return self._attempt(lambda: os.mkdir(self._real(path)) or SFTP_OK)

    def rmdir(self, path: str) -> int:
        return self._attempt(lambda: os.rmdir(self._real(path)) or SFTP_OK)

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK


class SftpFolderServer:
    """Serves ``root`` over SFTP on ``host:port`` in background threads until ``stop()``."""

    def __init__(self, root: Path, *, host: str, port: int, username: str, password: str,
                 host_key: paramiko.PKey) -> None:
        self.root = Path(root)
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self.host_key = host_key
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._transports: list[paramiko.Transport] = []

    def known_hosts_line(self) -> str:
        pattern = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{pattern} {self.host_key.get_name()} {self.host_key.get_base64()}"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(16)
        sock.settimeout(0.5)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name=f"sftp-{self.port}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                transport = paramiko.Transport(conn)
                transport.add_server_key(self.host_key)
                transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _FolderSFTP,
                                                root=self.root)
                transport.start_server(server=_Auth(self._username, self._password))
                self._transports = [t for t in self._transports if t.is_active()] + [transport]
            except (paramiko.SSHException, OSError, EOFError) as exc:
                log.info("benefits sftp: connection failed (%s)", type(exc).__name__)
                conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for transport in self._transports:
            transport.close()
