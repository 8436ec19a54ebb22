"""The name a task instance reports as its `hostname` in Airflow (AIRFLOW__CORE__HOSTNAME_CALLABLE).

On real hosts Airflow's default (the machine's FQDN) tells the workers apart; `make cluster` runs both
Celery workers on one machine, so each worker's environment carries its name instead. Imported by every
task process: keep it free of imports."""

from __future__ import annotations

import os
import socket


def worker_name() -> str:
    return os.environ.get("MAYORISTA_WORKER_NAME") or socket.getfqdn()
