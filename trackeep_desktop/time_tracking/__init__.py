"""Time tracking (issue 12): entries with one running timer per user, manual entries, the
totals per day in the user's timezone, per tag and per task, and CSV. Views in
``time_tracking.api`` (JSON) and ``time_tracking.pages`` (the Time page)."""

from trackeep_desktop.time_tracking.entries import (
    ITEM_TYPE,
    TimeEntryConflict,
    TimeEntryInvalid,
    TimeEntryNotFound,
    create_entry,
    delete_entry,
    deleted_entries,
    entries_json,
    entry_json,
    get_entry,
    list_entries,
    parse_range_bound,
    purge_entry,
    purge_expired,
    restore_entry,
    running_entry,
    stop_entry,
    stop_running,
    update_entry,
    user_zone,
)
from trackeep_desktop.time_tracking.reports import (
    CSV_COLUMNS,
    export_csv,
    parse_day,
    report,
    split_by_day,
    stats,
    week_of,
)

__all__ = [
    "CSV_COLUMNS", "ITEM_TYPE", "TimeEntryConflict", "TimeEntryInvalid", "TimeEntryNotFound",
    "create_entry", "delete_entry", "deleted_entries", "entries_json", "entry_json",
    "export_csv", "get_entry", "list_entries", "parse_day", "parse_range_bound",
    "purge_entry", "purge_expired", "report", "restore_entry", "running_entry", "split_by_day",
    "stats", "stop_entry", "stop_running", "update_entry", "user_zone", "week_of",
]
