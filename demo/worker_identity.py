"""Airflow ``[core] hostname_callable`` for several Celery workers on one machine.

Airflow records the host that ran each task instance; two workers on one machine would both report
the machine's name. A worker started with ``HUB_WORKER_NAME=worker1`` reports ``worker1@<host>``
(Celery's own naming), so the demo can show which worker ran which task. Without the variable it is
Airflow's default (the fully qualified host name).
"""
from __future__ import annotations

import os
import socket


def hostname() -> str:
    name = os.environ.get("HUB_WORKER_NAME")
    host = socket.getfqdn()
    return f"{name}@{host}" if name else host
