"""What the real-Airflow benches share (bench/real_scheduler.py, bench/signal_path.py): the hub's
signals over the machine's Redis under a channel prefix of their own, and Airflow's floor on that
path -- a DAG (``bench_floor``) with one empty task, scheduled on an asset the bench signals.
"""
from __future__ import annotations

import time

from hub.orchestration_assets import channel_for

REDIS_URL = "redis://127.0.0.1:6379/0"
FLOOR_URI = "hub://bench/floor"
FLOOR_DAG = f'''"""The bench's floor: an empty task, scheduled on a signalled asset (bench/signal_floor.py)."""
from airflow.sdk import DAG, task
from hub.orchestration import START, hub_asset

with DAG(dag_id="bench_floor", schedule=[hub_asset("{FLOOR_URI}")], start_date=START,
         catchup=False, max_active_runs=1) as dag:
    @task
    def empty() -> None:
        return None
    empty()
'''


def percentile(values: list[float], q: float) -> float:
    """The value at quantile ``q`` (nearest rank) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def signal_env(prefix: str) -> dict[str, str]:
    """The settings that send the hub's signals (web app and Airflow) over Redis under ``prefix``."""
    return {"HUB_SIGNAL_REDIS_URL": REDIS_URL, "HUB_SIGNAL_CONN_ID": f"hub_redis_{prefix}",
            f"AIRFLOW_CONN_HUB_REDIS_{prefix.upper()}": REDIS_URL,
            "HUB_SIGNAL_CHANNEL_PREFIX": prefix}


def wait_for_watchers(prefix: str, uris: list[str], timeout: float) -> None:
    """Until Airflow's asset watchers listen on every one of ``uris``' channels (or exit)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    channels = [channel_for(uri, prefix) for uri in uris]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(n > 0 for _, n in client.pubsub_numsub(*channels)):
            return
        time.sleep(1)
    raise SystemExit(f"asset watchers did not subscribe within {timeout:.0f} s")
