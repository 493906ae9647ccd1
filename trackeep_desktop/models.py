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


class User(BaseModel):
    """An account. Email and username are stored lower-case, so each is unique in any case.

    The table is ``users``: ``user`` is a reserved word in PostgreSQL.
    """

    id = peewee.AutoField()
    email = peewee.CharField(max_length=254, unique=True)
    username = peewee.CharField(max_length=32, unique=True)
    full_name = peewee.CharField(max_length=200, default="")
    password_hash = peewee.CharField(max_length=255)  # argon2id, with its parameters
    role = peewee.CharField(max_length=16, default="user")  # "admin" or "user"
    is_active = peewee.BooleanField(default=True)
    theme = peewee.CharField(max_length=16, default="system")  # light, dark or system
    timezone = peewee.CharField(max_length=64, default="UTC")
    totp_secret = peewee.CharField(max_length=64, null=True)  # set once 2FA is confirmed
    totp_pending_secret = peewee.CharField(max_length=64, null=True)  # during enrolment
    totp_last_counter = peewee.BigIntegerField(null=True)  # last accepted TOTP time step
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    last_login_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "users"

    @property
    def totp_enabled(self) -> bool:
        return self.totp_secret is not None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class BackupCode(BaseModel):
    """A single-use two-factor backup code, stored as its SHA-256."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="backup_codes")
    code_hash = peewee.CharField(max_length=64)
    used_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "backup_code"
        indexes = ((("user", "code_hash"), True),)


class ApiKey(BaseModel):
    """A personal API key (``tk_...``), stored as its SHA-256 with a short display prefix."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="api_keys")
    name = peewee.CharField(max_length=100)
    key_hash = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=16)
    scopes = peewee.CharField(max_length=500)  # space-separated
    created_at = peewee.DoubleField()
    expires_at = peewee.DoubleField(null=True)
    last_used_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "api_key"


class PairingCode(BaseModel):
    """A short one-time code a device exchanges for an API key, stored as its SHA-256."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="pairing_codes")
    code_hash = peewee.CharField(max_length=64, unique=True)
    scopes = peewee.CharField(max_length=500)
    created_at = peewee.DoubleField()
    expires_at = peewee.DoubleField(index=True)
    used_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "pairing_code"


ALL_MODELS = [DurableSession, Counter, User, BackupCode, ApiKey, PairingCode]
