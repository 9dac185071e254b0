"""Asset URIs and signal channels shared by the DAGs and the parts of the hub that signal Airflow.

No Airflow import here: the web app uses these names too. Each back-office system has its own
commands asset (``hub://ledger/commands/<system_id>``), so new work for one system starts only that
system's dispatch DAG. A signal for an asset travels on the Redis channel ``channel_for(uri)``,
which the asset's ``AssetWatcher`` listens on.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

CRM_CASES_URI = "hub://crm/cases"
COMMANDS_URI = "hub://ledger/commands"
OUTBOX_URI = "hub://ledger/outbox"

# Asset aliases through which a task emits events only for the assets it actually has work for.
COMMANDS_ALIAS = "hub_new_commands"
OUTBOX_ALIAS = "hub_outbox_waiting"

CHANNEL_PREFIX_ENV = "HUB_SIGNAL_CHANNEL_PREFIX"
DEFAULT_CHANNEL_PREFIX = "hub"


def commands_uri(system_id: str) -> str:
    """The asset that says "new commands for ``system_id``" (its dispatch DAG listens)."""
    return f"{COMMANDS_URI}/{system_id}"


def channel_prefix() -> str:
    """``HUB_SIGNAL_CHANNEL_PREFIX`` (default ``hub``): must be the same for the web app and Airflow."""
    return os.environ.get(CHANNEL_PREFIX_ENV) or DEFAULT_CHANNEL_PREFIX


def channel_for(uri: str, prefix: str | None = None) -> str:
    """The Redis pub/sub channel for an asset, e.g. ``hub.ledger.commands.revenues_northgate``."""
    if not uri.startswith("hub://"):
        raise ValueError(f"not a hub asset URI: {uri!r}")
    return f"{prefix or channel_prefix()}.{uri.removeprefix('hub://').replace('/', '.')}"


def assets_with_new_work(*, systems: Iterable[str] = (), outbox: bool = False,
                         unmapped: bool = False) -> list[str]:
    """The asset URIs to signal after recording work: each system that got new commands, the
    outbox when a write-back is waiting, and intake when a case is recorded but not yet mapped."""
    uris = [commands_uri(system) for system in sorted(set(systems))]
    if outbox:
        uris.append(OUTBOX_URI)
    if unmapped:
        uris.append(CRM_CASES_URI)
    return uris
