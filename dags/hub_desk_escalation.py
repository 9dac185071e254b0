"""Airflow DAG file. Overdue work items are e-mailed to their team every 15 minutes (once each)."""
from hub.orchestration import desk_escalation_dag

dag = desk_escalation_dag()
