"""The hub core: ledger, intake, dispatch, status sync, write-back, work items, web app, CLI."""
