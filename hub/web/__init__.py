"""The hub's own web app: CRM webhook receiver, operations figures, work items."""
