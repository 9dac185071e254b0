"""Airflow DAG file. Waste (Bartec Collective style, SOAP): dispatch in batches, and status sync."""
from hub.orchestration import dispatch_dag, status_sync_dag

dispatch = dispatch_dag("waste_bartec", cron="*/10 * * * *")
status_sync = status_sync_dag("waste_bartec", cron="*/15 * * * *")
