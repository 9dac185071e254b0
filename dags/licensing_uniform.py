"""Airflow DAG file. Licensing (applications written into the licensing system's own database):
dispatch in batches, and status sync of decisions (granted, refused, further information)."""
from hub.orchestration import dispatch_dag, status_sync_dag

dispatch = dispatch_dag("licensing_uniform", cron="*/10 * * * *")
status_sync = status_sync_dag("licensing_uniform", cron="*/20 * * * *")
