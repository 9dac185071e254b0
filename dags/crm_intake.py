"""Airflow DAG file. CRM intake: pull changed cases, record them, map them to back-office commands."""
from hub.orchestration import intake_dag

dag = intake_dag()
