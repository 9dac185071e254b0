"""Asset URIs shared by the DAGs and the parts of the hub that emit events (no Airflow import)."""
CRM_CASES_URI = "hub://crm/cases"
COMMANDS_URI = "hub://ledger/commands"
OUTBOX_URI = "hub://ledger/outbox"
