"""Durable copies in the database for the capabilities whose state must outlive a process
or a Redis outage: sessions and counters."""

from __future__ import annotations

import json
from collections.abc import Iterable

import peewee

from trackeep_desktop.capabilities.base import CounterBackup, SessionBackup
from trackeep_desktop.storage.db import connection
from trackeep_desktop.storage.models import Counter, DurableSession


class DatabaseSessionBackup(SessionBackup):
    """Sessions in the ``session`` table."""

    def __init__(self, db: peewee.Database):
        self.db = db
        # Sessions are written on every login and throttled touch: the upsert is built once
        # (peewee's query builder costs more than SQLite's insert itself). ON CONFLICT ...
        # DO UPDATE is the same on SQLite (>= 3.24) and PostgreSQL.
        p = db.param
        self._upsert_sql = (
            f"INSERT INTO session (id, user_id, data, last_active, expires_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (id) DO UPDATE SET "
            "data = excluded.data, last_active = excluded.last_active, "
            "expires_at = excluded.expires_at")

    def save(self, session: dict, expires_at: float) -> None:
        params = (session["id"], session["user_id"], json.dumps(session),
                  session["last_active"], expires_at)
        with connection(self.db), self.db.atomic():
            self.db.execute_sql(self._upsert_sql, params)

    def load(self, session_id: str, now: float) -> dict | None:
        with connection(self.db):
            row = (DurableSession
                   .select(DurableSession.data, DurableSession.last_active)
                   .where(DurableSession.id == session_id, DurableSession.expires_at > now)
                   .first())
        if row is None:
            return None
        session = json.loads(row.data)
        session["last_active"] = max(session.get("last_active", 0), row.last_active)
        return session

    def extend(self, session_id: str, last_active: float, expires_at: float) -> None:
        with connection(self.db):
            (DurableSession
             .update(last_active=last_active, expires_at=expires_at)
             .where(DurableSession.id == session_id)
             .execute())

    def delete(self, session_ids: Iterable[str]) -> None:
        ids = list(session_ids)
        if ids:
            with connection(self.db):
                DurableSession.delete().where(DurableSession.id.in_(ids)).execute()

    def list_for_user(self, user_id: int, now: float) -> list[dict]:
        with connection(self.db):
            rows = list(DurableSession
                        .select(DurableSession.data, DurableSession.last_active)
                        .where(DurableSession.user_id == user_id,
                               DurableSession.expires_at > now))
        sessions = []
        for row in rows:
            session = json.loads(row.data)
            session["last_active"] = max(session.get("last_active", 0), row.last_active)
            sessions.append(session)
        return sessions

    def purge_expired(self, now: float) -> int:
        """Delete expired sessions; return how many."""
        with connection(self.db):
            return DurableSession.delete().where(DurableSession.expires_at <= now).execute()


class DatabaseCounterBackup(CounterBackup):
    """Counters in the ``counter`` table."""

    def __init__(self, db: peewee.Database):
        self.db = db

    def load(self, name: str) -> int:
        with connection(self.db):
            row = Counter.select(Counter.value).where(Counter.name == name).first()
        return row.value if row else 0

    def save(self, values: dict[str, int]) -> None:
        if not values:
            return
        rows = [{"name": k, "value": v} for k, v in values.items()]
        with connection(self.db), self.db.atomic():
            for start in range(0, len(rows), 500):
                (Counter.insert_many(rows[start:start + 500])
                 .on_conflict(conflict_target=[Counter.name], preserve=[Counter.value])
                 .execute())
