"""Airflow DAG file. Housing repairs (REST): dispatch in batches, and status sync."""
from hub.orchestration import dispatch_dag, status_sync_dag

dispatch = dispatch_dag("housing_repairs", cron="*/10 * * * *")
status_sync = status_sync_dag("housing_repairs", cron="*/15 * * * *")
