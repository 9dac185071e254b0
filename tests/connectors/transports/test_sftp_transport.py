"""The SFTP transport against a real OpenSSH sshd: the channel it picks and a verified upload."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from connectors.transports import sftp
from tests.support.sshd import SshServer, sshd_server  # noqa: F401 - the session fixture


def _settings(server: SshServer) -> sftp.SftpSettings:
    return sftp.SftpSettings(host=server.host, port=server.port, username=server.username,
                             private_key_path=str(server.client_key_path),
                             known_hosts_path=str(server.known_hosts_path), timeout=10)


def test_an_aead_cipher_is_chosen_when_the_server_offers_one(sshd_server: SshServer,  # noqa: F811
                                                             tmp_path: Path) -> None:
    sshd_server.use_root(tmp_path)
    with sftp.connect(_settings(sshd_server)) as session:
        transport = session.sftp.get_channel().get_transport()
        assert transport.remote_cipher in sftp.PREFERRED_CIPHERS
        assert transport.local_cipher in sftp.PREFERRED_CIPHERS


def test_a_pipelined_upload_lands_whole_under_its_final_name(sshd_server: SshServer,  # noqa: F811
                                                             tmp_path: Path) -> None:
    sshd_server.use_root(tmp_path)
    data = os.urandom(3 * 2 ** 20 + 123)
    seen: list[int] = []
    with sftp.connect(_settings(sshd_server)) as session:
        session.upload_verified(data, ".batch.part", "batch.dat", progress=seen.append)
    assert hashlib.sha256((tmp_path / "batch.dat").read_bytes()).digest() == \
        hashlib.sha256(data).digest()
    assert not (tmp_path / ".batch.part").exists()
    assert seen[-1] == len(data) and seen == sorted(seen)


def test_an_upload_whose_bytes_differ_on_the_server_is_not_renamed(sshd_server: SshServer,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """The read-back compares every byte: one byte changed on the server (same size) fails the
    upload as transient, removes the temporary file and never puts the final name in place."""
    import pytest

    from connectors.errors import TransientError

    sshd_server.use_root(tmp_path)
    data = os.urandom(2 * 2 ** 20 + 7)
    with sftp.connect(_settings(sshd_server)) as session:
        real_stat = session.sftp.stat

        def stat_after_damage(path: str):  # type: ignore[no-untyped-def]
            part = tmp_path / ".batch.part"
            spoiled = bytearray(part.read_bytes())
            spoiled[len(spoiled) - 5] ^= 0x01      # late in the file: past the first pieces read
            part.write_bytes(bytes(spoiled))
            return real_stat(path)

        session.sftp.stat = stat_after_damage  # type: ignore[method-assign]
        with pytest.raises(TransientError) as caught:
            session.upload_verified(data, ".batch.part", "batch.dat")
    assert caught.value.code == "verify-content"
    assert not (tmp_path / "batch.dat").exists()
    assert not (tmp_path / ".batch.part").exists()


def test_requests_are_as_large_as_the_server_says_and_32k_when_it_does_not(
        sshd_server: SshServer, tmp_path: Path) -> None:  # noqa: F811
    sshd_server.use_root(tmp_path)
    data = os.urandom(1 * 2 ** 20 + 5)
    with sftp.connect(_settings(sshd_server)) as session:
        assert session.request_size() == sftp.LARGEST_REQUEST_SIZE   # OpenSSH states its limits
    with sftp.connect(_settings(sshd_server)) as session:
        def unsupported(*_args: object) -> None:
            raise OSError("operation unsupported")

        real = session.sftp._request
        session.sftp._request = unsupported  # type: ignore[method-assign]
        assert session.request_size() == sftp.REQUEST_SIZE
        session.sftp._request = real  # type: ignore[method-assign]
        session.upload_verified(data, ".small.part", "small.dat")
    assert (tmp_path / "small.dat").read_bytes() == data


def test_lines_are_streamed_across_chunks_and_limited(sshd_server: SshServer,  # noqa: F811
                                                      tmp_path: Path) -> None:
    import pytest

    from connectors.errors import UnreadableAnswer
    sshd_server.use_root(tmp_path)
    lines = [f"line {n} ".encode() * (n % 700) + b"\r\n" for n in range(400)]
    (tmp_path / "big.csv").write_bytes(b"".join(lines) + b"no end")
    (tmp_path / "long.csv").write_bytes(b"x" * (sftp.CHUNK_SIZE * 3))
    with sftp.connect(_settings(sshd_server)) as session:
        assert list(session.iter_lines("big.csv", max_bytes=10**8)) == lines + [b"no end"], \
            "lines cut across 32 KiB chunks come back whole, the last one without its end"
        with pytest.raises(UnreadableAnswer) as too_big:
            list(session.iter_lines("big.csv", max_bytes=100_000))
        assert too_big.value.code == "file-too-large"
        with pytest.raises(UnreadableAnswer) as too_long:
            list(session.iter_lines("long.csv", max_bytes=10**8, max_line_bytes=40_000))
        assert too_long.value.code == "line-too-long"
