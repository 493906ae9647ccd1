"""One backup at a time per application: made now (a button, the API) or on a schedule,
with retention, and the progress of the one under way."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from trackeep_desktop.backup.backup import BackupError, BackupInfo, create_backup, prune_backups

log = logging.getLogger(__name__)

#: Desktop mode backs up daily unless the setting says otherwise; ``trackeep serve`` does not.
DESKTOP_INTERVAL_HOURS = 24.0


def backup_dir(config: dict[str, Any]) -> Path:
    """``BACKUP_DIR``, or ``backups/`` in the data folder."""
    return Path(config.get("BACKUP_DIR") or Path(config["DATA_DIR"]) / "backups")


def interval_hours(config: dict[str, Any]) -> float:
    """Hours between scheduled backups (0: none). Unset: daily on the desktop, off on
    servers (``DESKTOP_MODE`` is set by the desktop program)."""
    value = config.get("BACKUP_INTERVAL_HOURS")
    if value is None:
        return DESKTOP_INTERVAL_HOURS if config.get("DESKTOP_MODE") else 0.0
    return float(value)


class BackupRunner:
    """Makes backups for one application, one at a time, and reports their progress."""

    def __init__(self, config: dict[str, Any], version: str):
        self.config = config
        self.version = version
        self.folder = backup_dir(config)
        self.keep = int(config.get("BACKUP_KEEP") or 0)
        self._lock = threading.Lock()
        self._running = False
        self._progress: dict[str, Any] = {"stage": None, "done": 0, "total": 0}
        self.last: BackupInfo | None = None
        self.last_error: str | None = None

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"running": self._running, **self._progress,
                    "last": self.last.to_json() if self.last else None,
                    "error": self.last_error}

    def _report(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            self._progress = {"stage": stage, "done": done, "total": total}

    def _claim(self) -> bool:
        with self._lock:
            if self._running:
                return False
            self._running = True
            self._progress = {"stage": "starting", "done": 0, "total": 0}
            self.last_error = None
            return True

    def _run_claimed(self) -> BackupInfo | None:
        try:
            info = create_backup(database_url=self.config["DATABASE_URL"],
                                 data_dir=self.config["DATA_DIR"], dest_dir=self.folder,
                                 version=self.version, progress=self._report)
            prune_backups(self.folder, self.keep)
        except BackupError as exc:
            log.error("the backup failed: %s", exc)
            with self._lock:
                self.last_error = str(exc)
            return None
        except Exception as exc:
            log.exception("the backup failed")
            with self._lock:
                self.last_error = f"the backup failed: {type(exc).__name__}: {exc}"
            return None
        else:
            with self._lock:
                self.last = info
            return info
        finally:
            with self._lock:
                self._running = False

    def run(self) -> BackupInfo | None:
        """Make a backup here and now (None if one is under way or it failed)."""
        if not self._claim():
            log.info("a backup is already under way; this one is skipped")
            return None
        return self._run_claimed()

    def start(self) -> bool:
        """Make a backup on a thread of its own; False if one is already under way."""
        if not self._claim():
            return False
        threading.Thread(target=self._run_claimed, name="trackeep-backup", daemon=True).start()
        return True

    def wait(self, timeout: float = 60.0) -> bool:
        """Wait until no backup is under way (tests, shutdown); True if none is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    return True
            time.sleep(0.02)
        return False
