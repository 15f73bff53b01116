"""Prefect tasks that wrap troupe operations: cache policies, retries, JSON result storage.

Prefect is quiet unless asked otherwise: at INFO it logs a line per task run, which drowns
troupe's own progress display. Set PREFECT_LOGGING_LEVEL to see its logs again. Any of these
defaults gives way to a value already in the environment.
"""

import os

for _name, _value in (
    ("PREFECT_LOGGING_LEVEL", "WARNING"),
    ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
    ("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL"),
    # Without PREFECT_API_URL Prefect starts a temporary server; its default 20 s to come up was
    # too short on a busy 2-core machine.
    ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90"),
):
    os.environ.setdefault(_name, _value)
