from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.connectors.benefits.harness import AcademyHarness, make_exchange
from tests.support.sshd import SshServer, sshd_server  # noqa: F401 - the session fixture


@pytest.fixture
def harness(sshd_server: SshServer, tmp_path: Path) -> Iterator[AcademyHarness]:  # noqa: F811
    """A fresh exchange folder and back office on the shared sshd."""
    sshd_server.fail_next(0)
    made = AcademyHarness(sshd_server, make_exchange(sshd_server, tmp_path))
    yield made
    made.close()


@pytest.fixture
def contract_harness(harness: AcademyHarness) -> AcademyHarness:
    return harness
