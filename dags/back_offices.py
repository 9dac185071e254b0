"""Airflow DAG file. Every back-office system instance in the instances file
(connectors/instances.yaml, or the file HUB_INSTANCES names): its dispatch DAG ``<instance>`` (in
batches, started by its commands asset or its cron), its status-sync DAG
``<instance>_status_sync`` and its nightly reconciliation DAG ``<instance>_reconcile``. Reading
that file is all it does at parse time."""
from hub.orchestration import instance_dags

globals().update(instance_dags())
