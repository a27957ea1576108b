"""Settings that exist in some PostgreSQL majors and not in others.

A server refuses to start or reload with a setting it does not know, so a
``postgres_settings`` entry written for Debian 12's PostgreSQL 15 can break a
Debian 13 host (PostgreSQL 17), and the other way round. These tables refuse
such an entry as soon as the major is known: from ``postgres_version`` while
the inventory is read, otherwise once the host's facts are in, before any
change. A setting missing from them is left to PostgreSQL's own check when the
configuration is applied (the candidate is then rejected and rolled back).
"""

from __future__ import annotations

__all__ = ["ADDED_IN", "REMOVED_IN", "RENAMED_IN", "version_problem"]

# Setting → the first major that has it (only those added from 14 on).
ADDED_IN: dict[str, int] = {
    **dict.fromkeys(
        (
            "client_connection_check_interval",
            "compute_query_id",
            "default_toast_compression",
            "enable_async_append",
            "enable_memoize",
            "huge_page_size",
            "idle_session_timeout",
            "log_recovery_conflict_waits",
            "min_dynamic_shared_memory",
            "recovery_init_sync_method",
            "remove_temp_files_after_crash",
            "vacuum_failsafe_age",
            "vacuum_multixact_failsafe_age",
        ),
        14,
    ),
    **dict.fromkeys(
        (
            "allow_in_place_tablespaces",
            "log_startup_progress_interval",
            "recovery_prefetch",
            "recursive_worktable_factor",
            "stats_fetch_consistency",
            "wal_decode_buffer_size",
        ),
        15,
    ),
    **dict.fromkeys(
        (
            "createrole_self_grant",
            "debug_parallel_query",
            "enable_presorted_aggregate",
            "icu_validation_level",
            "max_parallel_apply_workers_per_subscription",
            "reserved_connections",
            "scram_iterations",
            "send_abort_for_crash",
            "send_abort_for_kill",
            "vacuum_buffer_usage_limit",
        ),
        16,
    ),
    **dict.fromkeys(
        (
            "allow_alter_system",
            "commit_timestamp_buffers",
            "enable_group_by_reordering",
            "event_triggers",
            "io_combine_limit",
            "max_notify_queue_pages",
            "multixact_member_buffers",
            "multixact_offset_buffers",
            "notify_buffers",
            "serializable_buffers",
            "subtransaction_buffers",
            "summarize_wal",
            "sync_replication_slots",
            "synchronized_standby_slots",
            "trace_connection_negotiation",
            "transaction_buffers",
            "transaction_timeout",
            "wal_summary_keep_time",
        ),
        17,
    ),
}

# Setting → the first major that no longer has it, and what to do instead.
REMOVED_IN: dict[str, tuple[int, str]] = {
    "operator_precedence_warning": (14, "remove it"),
    "vacuum_cleanup_index_scale_factor": (14, "remove it"),
    "stats_temp_directory": (15, "remove it: statistics live in shared memory"),
    "promote_trigger_file": (16, "remove it: promote with pg_ctl promote"),
    "vacuum_defer_cleanup_age": (
        16,
        "remove it: use hot_standby_feedback or a replication slot",
    ),
    "db_user_namespace": (17, "remove it and name the database roles in full"),
    "old_snapshot_threshold": (17, "remove it"),
    "trace_recovery_messages": (17, "remove it"),
}

# Old name → (the major that renamed it, the new name).
RENAMED_IN: dict[str, tuple[int, str]] = {
    "force_parallel_mode": (16, "debug_parallel_query"),
}


def version_problem(name: str, major: int) -> str | None:
    """Why PostgreSQL ``major`` would refuse setting ``name``, or None."""
    if name in RENAMED_IN and major >= RENAMED_IN[name][0]:
        since, new = RENAMED_IN[name]
        return (
            f"{name}: PostgreSQL {since} renamed it {new}, and this host runs "
            f"{major}; write {new} instead"
        )
    if name in REMOVED_IN and major >= REMOVED_IN[name][0]:
        since, fix = REMOVED_IN[name]
        return (
            f"{name}: PostgreSQL {major} no longer has this setting (removed in "
            f"{since}); {fix}"
        )
    if name in ADDED_IN and major < ADDED_IN[name]:
        since = ADDED_IN[name]
        return (
            f"{name}: PostgreSQL {major} does not have this setting yet (added in "
            f"{since}); remove it, or set it only on hosts that run {since} or later"
        )
    return None
