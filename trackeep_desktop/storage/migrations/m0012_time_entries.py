"""Time tracking (issue 12): ``time_entry``, one row per stretch of time a user tracked.

``end_time`` is null while the entry runs. At most one running entry per user is kept by a
partial unique index over ``user_id WHERE end_time IS NULL AND deleted_at IS NULL`` (the
domain stops the old timer in the same transaction before it starts a new one; the index is
the last word if two starts race). The optional links to a task, bookmark or note are
foreign keys that become null when the item is purged. Tags are ``item_tag`` rows with
``item_type = 'time_entry'`` (the items' own tag mechanism). Named m0012: it depends only on
``users`` and the item tables of m0003; m0013 and m0014 are taken by other work.
"""

import peewee


def upgrade(db, migrator):
    class User(peewee.Model):
        id = peewee.AutoField()

        class Meta:
            database = db
            table_name = "users"

    class Task(peewee.Model):
        id = peewee.AutoField()

        class Meta:
            database = db
            table_name = "task"

    class Bookmark(peewee.Model):
        id = peewee.AutoField()

        class Meta:
            database = db
            table_name = "bookmark"

    class Note(peewee.Model):
        id = peewee.AutoField()

        class Meta:
            database = db
            table_name = "note"

    class TimeEntry(peewee.Model):
        id = peewee.AutoField()
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        description = peewee.TextField(default="")
        start_time = peewee.DoubleField()  # UTC epoch seconds
        end_time = peewee.DoubleField(null=True)  # null while running
        billable = peewee.BooleanField(default=False)
        hourly_rate = peewee.DoubleField(null=True)
        task = peewee.ForeignKeyField(Task, null=True, on_delete="SET NULL")
        bookmark = peewee.ForeignKeyField(Bookmark, null=True, on_delete="SET NULL")
        note = peewee.ForeignKeyField(Note, null=True, on_delete="SET NULL")
        source = peewee.CharField(max_length=32, default="api")
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()
        deleted_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "time_entry"

    db.create_tables([TimeEntry])
    db.execute_sql("CREATE INDEX time_entry_live_start ON time_entry (user_id, start_time, id) "
                   "WHERE deleted_at IS NULL")
    db.execute_sql("CREATE UNIQUE INDEX time_entry_one_running ON time_entry (user_id) "
                   "WHERE end_time IS NULL AND deleted_at IS NULL")
    db.execute_sql("CREATE INDEX time_entry_trash ON time_entry (user_id, deleted_at, id) "
                   "WHERE deleted_at IS NOT NULL")
