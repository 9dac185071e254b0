"""Airflow DAG file. CRM write-back: deliver outcomes and status changes from the outbox to the CRM."""
from hub.orchestration import writeback_dag

dag = writeback_dag()
