"""Airflow DAG file. Housekeeping (daily): retention of personal data in the ledger, and a
connection check of every back-office instance."""
from hub.orchestration import housekeeping_dag

dag = housekeeping_dag()
