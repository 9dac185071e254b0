"""What every generated contract test's harness writes (``hub new-connector``), once for all
transports: the example command (a subject reference, a description and the one personal value the
suite looks for in logs) and the command the back office refuses. ``string.Template`` text, spliced
into each transport's ``CONTRACT_TEST`` (hub/scaffold_rest.py, _soap, _sftp, _sql).
"""
from __future__ import annotations

REJECTED_COMMAND = '''    def rejected_command(self) -> Command:
        return self.command(999, subject_ref="X0000999")   # TODO(vendor): one it refuses
'''

# Harnesses on tests/support/harness.py's SimulatorHarness (REST, SOAP): make_command keys it.
KIT_COMMANDS = '''    def command(self, n: int, **payload: object) -> Command:
        return self.make_command(n, "$domain.request", {
            "subject_ref": f"AB{n:06d}", "description": "Example request",
            "contact_name": self.personal_values[0], **payload})

''' + REJECTED_COMMAND

# Harnesses of their own (SFTP, SQL: a back office beside the connector, not a served app).
OWN_COMMANDS = '''    def command(self, n: int, **payload: object) -> Command:
        return Command(key=f"{self.prefix}-{n}", system="$system_id",
                       operation="$domain.request", case_ref=f"CRM-{self.prefix}-{n}",
                       payload={"subject_ref": f"AB{n:06d}", "description": "Example request",
                                "contact_name": self.personal_values[0], **payload})

''' + REJECTED_COMMAND

# What the back office does when staff close a case, and the suite's class itself.
CHANGE_IN_BACKOFFICE = '''    def change_in_backoffice(self, outcome: Outcome) -> None:
        self.office.staff_change(str(outcome.reference), "COMPLETED")
'''

SUITE = '''class Test${cls}Contract(ConnectorContractSuite): ...
'''
