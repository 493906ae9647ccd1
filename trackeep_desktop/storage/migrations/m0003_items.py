"""Items: bookmarks, tasks, notes, per-user tags and the generic item-tag link table.

Every item table has ``deleted_at``: a row with it set is in the trash.
"""

import peewee


def upgrade(db, migrator):
    class User(peewee.Model):
        id = peewee.AutoField()

        class Meta:
            database = db
            table_name = "users"

    class Bookmark(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        url = peewee.TextField()
        url_hash = peewee.CharField(max_length=64)
        title = peewee.CharField(max_length=500, default="")
        description = peewee.TextField(default="")
        favicon_url = peewee.TextField(default="")
        is_favorite = peewee.BooleanField(default=False)
        is_read = peewee.BooleanField(default=False)
        read_at = peewee.DoubleField(null=True)
        is_public = peewee.BooleanField(default=False)
        fetch_status = peewee.CharField(max_length=16, default="skipped")
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()
        deleted_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "bookmark"
            indexes = (
                (("user", "url_hash"), False),
                (("user", "deleted_at", "created_at"), False),
            )

    class Task(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        parent = peewee.ForeignKeyField("self", null=True, on_delete="CASCADE")
        title = peewee.CharField(max_length=500)
        description = peewee.TextField(default="")
        status = peewee.CharField(max_length=16, default="pending")
        priority = peewee.CharField(max_length=16, default="medium")
        due_date = peewee.DoubleField(null=True)
        progress = peewee.IntegerField(default=0)
        completed_at = peewee.DoubleField(null=True)
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()
        deleted_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "task"
            indexes = ((("user", "deleted_at", "created_at"), False),)

    class Note(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        title = peewee.CharField(max_length=500)
        content = peewee.TextField(default="")
        is_pinned = peewee.BooleanField(default=False)
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()
        deleted_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "note"
            indexes = ((("user", "deleted_at", "created_at"), False),)

    class Tag(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        name = peewee.CharField(max_length=64)
        name_key = peewee.CharField(max_length=200)
        color = peewee.CharField(max_length=7)
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()

        class Meta:
            database = db
            table_name = "tag"
            indexes = ((("user", "name_key"), True),)

    class ItemTag(peewee.Model):
        tag = peewee.ForeignKeyField(Tag, on_delete="CASCADE")
        item_type = peewee.CharField(max_length=16)
        item_id = peewee.IntegerField()

        class Meta:
            database = db
            table_name = "item_tag"
            indexes = (
                (("tag", "item_type", "item_id"), True),
                (("item_type", "item_id"), False),
            )

    db.create_tables([Bookmark, Task, Note, Tag, ItemTag])
