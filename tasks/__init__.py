"""Prefect tasks that wrap troupe operations: cache policies, retries, JSON result storage.

Prefect is quiet unless asked otherwise: at INFO it logs a line per task run, which drowns
troupe's own progress display. Set PREFECT_LOGGING_LEVEL to see its logs again.
"""

import os

for _name, _value in (
    ("PREFECT_LOGGING_LEVEL", "WARNING"),
    ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
    ("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL"),
):
    os.environ.setdefault(_name, _value)
