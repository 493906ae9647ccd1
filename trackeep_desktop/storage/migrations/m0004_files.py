"""Files: uploaded files (bytes in the content-addressed store) and their share links."""

import peewee


def upgrade(db, migrator):
    class User(peewee.Model):  # only what the foreign keys need; m0002 created the table
        id = peewee.AutoField()

        class Meta:
            database = db
            table_name = "users"

    class File(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        name = peewee.CharField(max_length=255)
        description = peewee.TextField(default="")
        mime_type = peewee.CharField(max_length=255)
        kind = peewee.CharField(max_length=16)
        size = peewee.BigIntegerField()
        sha256 = peewee.CharField(max_length=64, index=True)
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()
        deleted_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "file"
            indexes = ((("user", "deleted_at", "created_at"), False),)

    class FileShare(peewee.Model):
        file = peewee.ForeignKeyField(File, on_delete="CASCADE")
        token_hash = peewee.CharField(max_length=64, unique=True)
        prefix = peewee.CharField(max_length=16)
        created_at = peewee.DoubleField()
        expires_at = peewee.DoubleField(null=True)
        revoked_at = peewee.DoubleField(null=True)
        download_count = peewee.IntegerField(default=0)
        last_download_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "file_share"

    db.create_tables([File, FileShare])
