"""Airflow DAG file. Benefits (changes of circumstances as batch files over SFTP): dispatch delivers
a file per run; status sync collects the back office's answers, later changes and overdue answers."""
from hub.orchestration import dispatch_dag, status_sync_dag

dispatch = dispatch_dag("benefits_academy", cron="0 * * * *")
status_sync = status_sync_dag("benefits_academy", cron="*/10 * * * *")
