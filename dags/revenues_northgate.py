"""Airflow DAG file. Revenues (Council Tax, Business Rates) over SOAP: dispatch in batches, and status sync."""
from hub.orchestration import dispatch_dag, status_sync_dag

dispatch = dispatch_dag("revenues_northgate", cron="*/10 * * * *")
status_sync = status_sync_dag("revenues_northgate", cron="*/30 * * * *")
