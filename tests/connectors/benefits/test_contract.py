"""AcademyConnector passes the shared connector contract against a real sshd."""
from __future__ import annotations

import pytest

from connectors.testing import ConnectorContractSuite

pytestmark = pytest.mark.sshd


class TestAcademyContract(ConnectorContractSuite):
    """Every promise of connectors.base, over SFTP with the Benefits back office on disk."""
