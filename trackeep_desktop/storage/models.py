"""The database tables, as peewee models bound to :data:`trackeep_desktop.db.database`.

Schema changes are numbered modules in :mod:`trackeep_desktop.migrations`; these models
describe the schema as the latest migration leaves it.
"""

import peewee

from trackeep_desktop.storage.db import database

#: The largest id a row can have: a signed 64-bit integer on SQLite and PostgreSQL alike.
#: Ids from outside are checked against it before a query (SQLite's driver raises
#: ``OverflowError`` binding a larger one; PostgreSQL finds nothing).
MAX_ID = 2**63 - 1


class BaseModel(peewee.Model):
    """Every table's base. An implicit primary key is written out (``id =
    peewee.AutoField()``, what peewee adds by itself) and each foreign key's ``<name>_id``
    accessor is annotated, so the type checker knows both."""

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
    # Sealed (accounts.sealing): set once 2FA is confirmed, and during enrolment.
    totp_secret = peewee.CharField(max_length=255, null=True)
    totp_pending_secret = peewee.CharField(max_length=255, null=True)
    totp_last_counter = peewee.BigIntegerField(null=True)  # last accepted TOTP time step
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    last_login_at = peewee.DoubleField(null=True)
    # Bumped by every committed write of the user's data, in its transaction, by one
    # ``UPDATE ... SET content_version = content_version + 1`` (storage.versions): never
    # written from a loaded row, which could carry it backwards.
    content_version = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "users"
        only_save_dirty = True  # a save() writes what was assigned, never content_version

    @property
    def totp_enabled(self) -> bool:
        return self.totp_secret is not None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class BackupCode(BaseModel):
    """A single-use two-factor backup code, stored as its SHA-256."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="backup_codes")
    user_id: int
    code_hash = peewee.CharField(max_length=64)
    used_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "backup_code"
        indexes = ((("user", "code_hash"), True),)


class ApiKey(BaseModel):
    """A personal API key (``tk_...``), stored as its SHA-256 with a short display prefix."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="api_keys")
    user_id: int
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

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="pairing_codes")
    user_id: int
    code_hash = peewee.CharField(max_length=64, unique=True)
    scopes = peewee.CharField(max_length=500)
    created_at = peewee.DoubleField()
    expires_at = peewee.DoubleField(index=True)
    used_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "pairing_code"


ALL_MODELS = [DurableSession, Counter, User, BackupCode, ApiKey, PairingCode]


# ------------------------------------------------------------------------------------------
# Items (issue 4): bookmarks, tasks, notes, tags and the item-tag links (migration m0003).
# The domain is trackeep_desktop.items. A row whose ``deleted_at`` is set is in the trash.
# Each item table also has the partial indexes of migration m0009 (one per sort of its live
# rows, ``<table>_live_<key>``, and ``<table>_trash``), which peewee's Meta cannot describe.


class Bookmark(BaseModel):
    """A saved page. ``url`` is normalized; ``url_hash`` (its SHA-256) finds duplicates."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="bookmarks")
    user_id: int
    url = peewee.TextField()
    url_hash = peewee.CharField(max_length=64)
    title = peewee.CharField(max_length=500, default="")
    description = peewee.TextField(default="")
    favicon_url = peewee.TextField(default="")
    is_favorite = peewee.BooleanField(default=False)
    is_read = peewee.BooleanField(default=False)
    read_at = peewee.DoubleField(null=True)
    is_public = peewee.BooleanField(default=False)  # accepted and stored (original clients)
    fetch_status = peewee.CharField(max_length=16, default="skipped")  # metadata fetch state
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    deleted_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "bookmark"
        indexes = ((("user", "url_hash"), False),)


class Task(BaseModel):
    """A task; ``parent`` makes it a subtask (one level only)."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="tasks")
    user_id: int
    parent = peewee.ForeignKeyField("self", null=True, on_delete="CASCADE", backref="subtasks")
    parent_id: int | None
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
        table_name = "task"


class Note(BaseModel):
    """A Markdown note."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="notes")
    user_id: int
    title = peewee.CharField(max_length=500)
    content = peewee.TextField(default="")
    is_pinned = peewee.BooleanField(default=False)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    deleted_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "note"


class Tag(BaseModel):
    """A user's tag; ``name_key`` (the case-folded name) is unique per user."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="tags")
    user_id: int
    name = peewee.CharField(max_length=64)
    name_key = peewee.CharField(max_length=200)
    color = peewee.CharField(max_length=7)  # #rrggbb
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()

    class Meta:
        table_name = "tag"
        indexes = ((("user", "name_key"), True),)


class ItemTag(BaseModel):
    """A tag on an item of any type (``bookmark``, ``task``, ``note``, ``file``...)."""

    id = peewee.AutoField()
    tag = peewee.ForeignKeyField(Tag, on_delete="CASCADE", backref="links")
    tag_id: int
    item_type = peewee.CharField(max_length=16)
    item_id = peewee.IntegerField()

    class Meta:
        table_name = "item_tag"
        indexes = (
            (("tag", "item_type", "item_id"), True),
            (("item_type", "item_id", "tag"), False),  # m0009: a page's tags from the index
        )


class ItemCount(BaseModel):
    """A count kept as the rows change (migration m0009; ``trackeep_desktop.items.counts``):
    with ``tag_id`` 0 one of the user's own (``bookmark``: live bookmarks, ``bookmark:trash``,
    ``bookmark:unread``, ``task:completed``, ``tags``...), with a tag's id the live items of
    the type ``name`` carrying that tag."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="item_counts")
    user_id: int
    tag_id = peewee.IntegerField()
    name = peewee.CharField(max_length=64)
    n = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "item_count"
        primary_key = peewee.CompositeKey("user", "tag_id", "name")


ALL_MODELS += [Bookmark, Task, Note, Tag, ItemTag, ItemCount]


# ------------------------------------------------------------------------------------------
# Files (issue 4): uploaded files and their share links (migration m0004). The domain is
# trackeep_desktop.files. The bytes live in the data folder's content-addressed store
# (``files/ab/cd/<sha256>``), one blob shared by every row with the same content.


class File(BaseModel):
    """An uploaded file. ``name`` is the original name, cleaned for display and never used as
    a path; the bytes are the blob named ``sha256``. A row whose ``deleted_at`` is set is in
    the trash."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="files")
    user_id: int
    name = peewee.CharField(max_length=255)
    description = peewee.TextField(default="")
    mime_type = peewee.CharField(max_length=255)
    kind = peewee.CharField(max_length=16)  # image, video, audio, document, archive, other
    size = peewee.BigIntegerField()
    sha256 = peewee.CharField(max_length=64, index=True)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    deleted_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "file"


class FileShare(BaseModel):
    """A share link to a file: anyone with the token may download it until it expires or is
    revoked. The token is stored as its SHA-256, with a short prefix to tell links apart."""

    id = peewee.AutoField()
    file = peewee.ForeignKeyField(File, on_delete="CASCADE", backref="shares")
    file_id: int
    token_hash = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=16)
    created_at = peewee.DoubleField()
    expires_at = peewee.DoubleField(null=True)
    revoked_at = peewee.DoubleField(null=True)
    download_count = peewee.IntegerField(default=0)
    last_download_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "file_share"


ALL_MODELS += [File, FileShare]


# ------------------------------------------------------------------------------------------
# Search (issue 5): the full-text index's filterable attributes and saved searches
# (migration m0005). The domain is trackeep_desktop.search. The text itself lives in the FTS5
# table ``search_fts`` on SQLite and in extra columns (``body``, ``tags``, ``tsv``) of
# ``search_document`` on PostgreSQL; both are reached with SQL in the search module.


class SearchDocument(BaseModel):
    """One indexed item (``item_type`` + ``item_id``), kept in step by the items' change
    hooks; derived state, rebuilt by ``trackeep search reindex``. ``deleted`` is set while
    the item is in the trash."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="search_documents")
    user_id: int
    item_type = peewee.CharField(max_length=16)
    item_id = peewee.IntegerField()
    title = peewee.TextField(default="")
    is_favorite = peewee.BooleanField(default=False)
    is_unread = peewee.BooleanField(default=False)
    is_pinned = peewee.BooleanField(default=False)
    status = peewee.CharField(max_length=16, null=True)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    deleted = peewee.BooleanField(default=False)

    class Meta:
        table_name = "search_document"
        indexes = (
            (("item_type", "item_id"), True),
            (("user", "deleted", "updated_at"), False),
        )


class SavedSearch(BaseModel):
    """A user's named query; ``name_key`` (the case-folded name) is unique per user."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="saved_searches")
    user_id: int
    name = peewee.CharField(max_length=100)
    name_key = peewee.CharField(max_length=400)
    query = peewee.TextField()
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()

    class Meta:
        table_name = "saved_search"
        indexes = ((("user", "name_key"), True),)


ALL_MODELS += [SearchDocument, SavedSearch]


# ------------------------------------------------------------------------------------------
# Messaging (issue 10): conversations, their members, messages, reactions, the ordered event
# log each conversation's live events are replayed from, and notifications (migration m0010).
# The domain is trackeep_desktop.messaging.


class Conversation(BaseModel):
    """A conversation: ``kind`` is ``dm`` (two people), ``group`` or ``team`` (named, with
    roles), ``self`` (notes to self) or ``general`` (the instance-wide channel). ``unique_key``
    makes a DM one per pair (``dm:3:7``), notes to self one per user and ``#general`` one per
    instance; it is null for groups. ``last_seq`` is the sequence number of the conversation's
    latest event (:class:`ConversationEvent`), bumped under the row's lock."""

    id = peewee.AutoField()
    kind = peewee.CharField(max_length=16)
    name = peewee.CharField(max_length=100, default="")
    topic = peewee.CharField(max_length=500, default="")
    unique_key = peewee.CharField(max_length=64, null=True, unique=True)
    created_by = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_by_id: int | None
    last_seq = peewee.BigIntegerField(default=0)
    last_message_at = peewee.DoubleField(null=True)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()

    class Meta:
        table_name = "conversation"


class ConversationMember(BaseModel):
    """One person in a conversation, with their role, archive and mute switches and what
    they have read (the id of the last message read)."""

    id = peewee.AutoField()
    conversation = peewee.ForeignKeyField(Conversation, on_delete="CASCADE",
                                          backref="members")
    conversation_id: int
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    user_id: int
    role = peewee.CharField(max_length=16, default="member")  # owner, admin, member
    archived = peewee.BooleanField(default=False)
    muted = peewee.BooleanField(default=False)
    last_read_message_id = peewee.BigIntegerField(default=0)
    joined_at = peewee.DoubleField()

    class Meta:
        table_name = "conversation_member"
        indexes = ((("conversation", "user"), True), (("user", "conversation"), False))


class Message(BaseModel):
    """A message. ``deleted_at`` makes it a tombstone (the body is emptied, the row stays so
    replies keep their thread). ``attachments`` is JSON: cards ``{type, id, title}`` of the
    sender's own items; ``mentions`` the JSON list of mentioned user ids."""

    id = peewee.AutoField()
    conversation = peewee.ForeignKeyField(Conversation, on_delete="CASCADE")
    conversation_id: int
    sender = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
    sender_id: int | None
    body = peewee.TextField(default="")
    reply_to = peewee.BigIntegerField(null=True)
    attachments = peewee.TextField(default="[]")
    mentions = peewee.TextField(default="[]")
    seq = peewee.BigIntegerField()
    created_at = peewee.DoubleField()
    edited_at = peewee.DoubleField(null=True)
    deleted_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "message"
        indexes = ((("conversation", "id"), False), (("conversation", "seq"), False))


class Reaction(BaseModel):
    """One user's emoji on a message (one per user and emoji)."""

    id = peewee.AutoField()
    message = peewee.ForeignKeyField(Message, on_delete="CASCADE")
    message_id: int
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    user_id: int
    emoji = peewee.CharField(max_length=64)
    created_at = peewee.DoubleField()

    class Meta:
        table_name = "reaction"
        indexes = ((("message", "user", "emoji"), True),)


class ConversationEvent(BaseModel):
    """A conversation's live event as it was published, numbered ``seq`` (1, 2, 3... per
    conversation, assigned in the write's transaction): a client that reconnects asks for what
    came after the last ``seq`` it saw and gets exactly that, in order."""

    id = peewee.AutoField()
    conversation = peewee.ForeignKeyField(Conversation, on_delete="CASCADE")
    conversation_id: int
    seq = peewee.BigIntegerField()
    type = peewee.CharField(max_length=32)
    data = peewee.TextField()  # JSON
    created_at = peewee.DoubleField()

    class Meta:
        table_name = "conversation_event"
        indexes = ((("conversation", "seq"), True),)


class Notification(BaseModel):
    """Something a user should look at: ``kind`` is ``mention``, ``direct_message`` or
    ``added`` (to a group); ``read_at`` is set once read."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    user_id: int
    kind = peewee.CharField(max_length=32)
    conversation = peewee.ForeignKeyField(Conversation, null=True, on_delete="CASCADE")
    conversation_id: int | None
    message_id = peewee.BigIntegerField(null=True)
    actor = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL",
                                   backref="notifications_caused")
    actor_id: int | None
    text = peewee.CharField(max_length=500, default="")
    created_at = peewee.DoubleField()
    read_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "notification"
        indexes = ((("user", "id"), False), (("user", "read_at"), False))


ALL_MODELS += [Conversation, ConversationMember, Message, Reaction, ConversationEvent,
               Notification]


# ------------------------------------------------------------------------------------------
# Challenges (issue 11): the domain is trackeep_desktop.challenges (migration m0011).


class Challenge(BaseModel):
    """A challenge: a period in its creator's timezone, who may join, and one scoring rule.

    ``starts_at``/``ends_at`` are the period's bounds in UTC seconds (``ends_at`` exclusive:
    the midnight after ``end_date``), so scoring compares item timestamps directly.
    ``finished_at`` is set once the period is over: from then on the standings are frozen.
    """

    id = peewee.AutoField()
    creator = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="challenges")
    creator_id: int
    title = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    start_date = peewee.CharField(max_length=10)
    end_date = peewee.CharField(max_length=10)
    timezone = peewee.CharField(max_length=64)
    starts_at = peewee.DoubleField()
    ends_at = peewee.DoubleField(index=True)
    visibility = peewee.CharField(max_length=16)
    invite_token = peewee.CharField(max_length=64, unique=True)
    rule_type = peewee.CharField(max_length=32)
    rule_target = peewee.IntegerField()
    rule_tag = peewee.CharField(max_length=64, null=True)
    finished_at = peewee.DoubleField(null=True)
    created_at = peewee.DoubleField()

    class Meta:
        table_name = "challenge"


class ChallengeParticipant(BaseModel):
    """One member of a challenge: the score the application computed from the member's own
    activity, and ``reached_at`` (whole seconds) when the current score was reached."""

    id = peewee.AutoField()
    challenge = peewee.ForeignKeyField(Challenge, on_delete="CASCADE", backref="participants")
    challenge_id: int
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="participations")
    user_id: int
    score = peewee.IntegerField(default=0)
    reached_at = peewee.BigIntegerField()
    joined_at = peewee.DoubleField()

    class Meta:
        table_name = "challenge_participant"
        indexes = ((("challenge", "user"), True), (("user",), False),
                   (("challenge", "score", "reached_at"), False))


ALL_MODELS += [Challenge, ChallengeParticipant]


# ------------------------------------------------------------------------------------------
# Time tracking (issue 12): the domain is trackeep_desktop.time_tracking (migration m0012).
# Besides the indexes below, m0012 makes the partial indexes ``time_entry_live_start``,
# ``time_entry_trash`` and ``time_entry_one_running`` (unique: one running entry per user).


class TimeEntry(BaseModel):
    """A stretch of time a user tracked, from ``start_time`` to ``end_time`` (UTC seconds;
    ``end_time`` is null while it runs), optionally linked to one of the user's tasks,
    bookmarks or notes (null again once the item is purged). Its tags are ``item_tag`` rows
    of type ``time_entry``. A row whose ``deleted_at`` is set is deleted (restorable)."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="time_entries")
    user_id: int
    description = peewee.TextField(default="")
    start_time = peewee.DoubleField()
    end_time = peewee.DoubleField(null=True)
    billable = peewee.BooleanField(default=False)
    hourly_rate = peewee.DoubleField(null=True)
    task = peewee.ForeignKeyField(Task, null=True, on_delete="SET NULL", backref="time_entries")
    task_id: int | None
    bookmark = peewee.ForeignKeyField(Bookmark, null=True, on_delete="SET NULL",
                                      backref="time_entries")
    bookmark_id: int | None
    note = peewee.ForeignKeyField(Note, null=True, on_delete="SET NULL", backref="time_entries")
    note_id: int | None
    source = peewee.CharField(max_length=32, default="api")
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    deleted_at = peewee.DoubleField(null=True)

    class Meta:
        table_name = "time_entry"


ALL_MODELS += [TimeEntry]
