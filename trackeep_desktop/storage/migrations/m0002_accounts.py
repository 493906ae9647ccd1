"""Accounts: users, two-factor backup codes, API keys and device pairing codes."""

import peewee


def upgrade(db, migrator):
    class User(peewee.Model):
        id = peewee.AutoField()
        email = peewee.CharField(max_length=254, unique=True)
        username = peewee.CharField(max_length=32, unique=True)
        full_name = peewee.CharField(max_length=200, default="")
        password_hash = peewee.CharField(max_length=255)
        role = peewee.CharField(max_length=16, default="user")
        is_active = peewee.BooleanField(default=True)
        theme = peewee.CharField(max_length=16, default="system")
        timezone = peewee.CharField(max_length=64, default="UTC")
        totp_secret = peewee.CharField(max_length=64, null=True)
        totp_pending_secret = peewee.CharField(max_length=64, null=True)
        totp_last_counter = peewee.BigIntegerField(null=True)
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()
        last_login_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "users"

    class BackupCode(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        code_hash = peewee.CharField(max_length=64)
        used_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "backup_code"
            indexes = ((("user", "code_hash"), True),)

    class ApiKey(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        name = peewee.CharField(max_length=100)
        key_hash = peewee.CharField(max_length=64, unique=True)
        prefix = peewee.CharField(max_length=16)
        scopes = peewee.CharField(max_length=500)
        created_at = peewee.DoubleField()
        expires_at = peewee.DoubleField(null=True)
        last_used_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "api_key"

    class PairingCode(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        code_hash = peewee.CharField(max_length=64, unique=True)
        scopes = peewee.CharField(max_length=500)
        created_at = peewee.DoubleField()
        expires_at = peewee.DoubleField(index=True)
        used_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "pairing_code"

    db.create_tables([User, BackupCode, ApiKey, PairingCode])
