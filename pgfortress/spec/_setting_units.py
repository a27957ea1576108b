"""Units of the PostgreSQL settings whose kind pgfortress knows.

PostgreSQL refuses ``work_mem = '8 MiB'`` only when it reads the file; these
checks refuse it in the inventory, before any host is contacted. Settings
missing from these tables are left to PostgreSQL's own check at apply time.
"""

from __future__ import annotations

import re

__all__ = ["MEMORY_SETTINGS", "TIME_SETTINGS", "unit_problem"]

MEMORY_UNITS = ("B", "kB", "MB", "GB", "TB")
TIME_UNITS = ("us", "ms", "s", "min", "h", "d")

MEMORY_SETTINGS = frozenset(
    {
        "autovacuum_work_mem",
        "backend_flush_after",
        "bgwriter_flush_after",
        "checkpoint_flush_after",
        "effective_cache_size",
        "gin_pending_list_limit",
        "huge_page_size",
        "log_rotation_size",
        "logical_decoding_work_mem",
        "maintenance_work_mem",
        "max_slot_wal_keep_size",
        "max_stack_depth",
        "max_wal_size",
        "min_dynamic_shared_memory",
        "min_parallel_index_scan_size",
        "min_parallel_table_scan_size",
        "min_wal_size",
        "shared_buffers",
        "temp_buffers",
        "temp_file_limit",
        "wal_buffers",
        "wal_keep_size",
        "wal_skip_threshold",
        "wal_writer_flush_after",
        "work_mem",
    }
)
TIME_SETTINGS = frozenset(
    {
        "archive_timeout",
        "authentication_timeout",
        "autovacuum_naptime",
        "autovacuum_vacuum_cost_delay",
        "bgwriter_delay",
        "checkpoint_timeout",
        "checkpoint_warning",
        "client_connection_check_interval",
        "deadlock_timeout",
        "idle_in_transaction_session_timeout",
        "idle_session_timeout",
        "lock_timeout",
        "log_autovacuum_min_duration",
        "log_min_duration_sample",
        "log_min_duration_statement",
        "log_rotation_age",
        "max_standby_archive_delay",
        "max_standby_streaming_delay",
        "statement_timeout",
        "tcp_keepalives_idle",
        "tcp_keepalives_interval",
        "tcp_user_timeout",
        "transaction_timeout",
        "vacuum_cost_delay",
        "wal_receiver_status_interval",
        "wal_receiver_timeout",
        "wal_retrieve_retry_interval",
        "wal_sender_timeout",
        "wal_writer_delay",
    }
)

# A number, optional blanks, then an optional unit: how PostgreSQL reads them.
_QUANTITY = re.compile(r"\s*(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*")


def unit_problem(name: str, value: str | int | float | bool) -> str | None:
    """Why ``value`` is not a valid quantity for setting ``name``, or None."""
    units: tuple[str, ...]
    if name in MEMORY_SETTINGS:
        kind, units, example = "memory", MEMORY_UNITS, "64MB"
    elif name in TIME_SETTINGS:
        kind, units, example = "time", TIME_UNITS, "30s"
    else:
        return None
    accepted = ", ".join(units)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None  # a plain number is in the setting's base unit
    match = _QUANTITY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return (
            f"{name}: {value!r} is not a {kind} quantity; write a number with one "
            f"of the units {accepted}, such as {example!r}"
        )
    unit = match.group(2)
    if unit and unit not in units:
        other = "time" if kind == "memory" else "memory"
        known = TIME_UNITS if kind == "memory" else MEMORY_UNITS
        why = f"a {other} unit" if unit in known else "not a unit PostgreSQL knows"
        return (
            f"{name}: {value!r} has the unit {unit!r}, {why}; {name} is a {kind} "
            f"setting: use {accepted} (units are case-sensitive), such as {example!r}"
        )
    return None
