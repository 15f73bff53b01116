"""Prefect tasks that wrap troupe operations: cache policies, retries, JSON result storage."""
