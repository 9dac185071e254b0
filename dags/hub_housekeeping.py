"""Airflow DAG file. Housekeeping: retention of personal data in the ledger (daily)."""
from hub.orchestration import housekeeping_dag

dag = housekeeping_dag()
