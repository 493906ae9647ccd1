"""Backups that restore: online snapshots of the database and the file store
(:mod:`.backup`), their restore (:mod:`.restore`) and the scheduled ones (:mod:`.schedule`).
Flask-free; the views are in :mod:`.api` and :mod:`.pages`."""

from trackeep_desktop.backup.backup import (
    BackupError,
    BackupFailed,
    BackupInfo,
    BackupNotFound,
    create_backup,
    find_backup,
    list_backups,
    prune_backups,
)
from trackeep_desktop.backup.restore import (
    CorruptArchive,
    RestoreFailed,
    RestoreReport,
    TargetNotEmpty,
    restore_backup,
    verify_archive,
)
from trackeep_desktop.backup.schedule import BackupRunner, backup_dir, interval_hours

__all__ = [
    "BackupError", "BackupFailed", "BackupInfo", "BackupNotFound", "BackupRunner",
    "CorruptArchive", "RestoreFailed", "RestoreReport", "TargetNotEmpty", "backup_dir",
    "create_backup", "find_backup", "interval_hours", "list_backups", "prune_backups",
    "restore_backup", "verify_archive",
]
