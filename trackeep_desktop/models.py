"""The database tables, as peewee models bound to :data:`trackeep_desktop.db.database`.

Schema changes are numbered modules in :mod:`trackeep_desktop.migrations`; these models
describe the schema as the latest migration leaves it.
"""

import peewee

from .db import database


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class DurableSession(BaseModel):
    """The durable copy of a server-side session (the hot copy is in Redis or memory)."""

    id = peewee.CharField(primary_key=True, max_length=64)
    user_id = peewee.IntegerField(index=True)
    data = peewee.TextField()  # the whole session record as JSON
    last_active = peewee.DoubleField()
    expires_at = peewee.DoubleField(index=True)

    class Meta:
        table_name = "session"


class Counter(BaseModel):
    """The last flushed value of a counter such as ``views:bookmark:12``."""

    name = peewee.CharField(primary_key=True, max_length=255)
    value = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "counter"


ALL_MODELS = [DurableSession, Counter]
