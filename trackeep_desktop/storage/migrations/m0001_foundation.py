"""Durable sessions and counters."""

import peewee


def upgrade(db, migrator):
    class Session(peewee.Model):
        id = peewee.CharField(primary_key=True, max_length=64)
        user_id = peewee.IntegerField(index=True)
        data = peewee.TextField()
        last_active = peewee.DoubleField()
        expires_at = peewee.DoubleField(index=True)

        class Meta:
            database = db
            table_name = "session"

    class Counter(peewee.Model):
        name = peewee.CharField(primary_key=True, max_length=255)
        value = peewee.BigIntegerField(default=0)

        class Meta:
            database = db
            table_name = "counter"

    db.create_tables([Session, Counter])
