"""Messaging (issue 10): conversations and their members, messages and reactions, each
conversation's numbered event log (what a reconnecting client replays) and notifications.

Numbered 0010: 0009 is taken by work on another branch; the runner applies whatever is
pending in name order, so the two land in either order.
"""

import peewee


def upgrade(db, migrator):
    class User(peewee.Model):  # only what the foreign keys need; m0002 created the table
        id = peewee.AutoField()

        class Meta:
            database = db
            table_name = "users"

    class Conversation(peewee.Model):
        kind = peewee.CharField(max_length=16)
        name = peewee.CharField(max_length=100, default="")
        topic = peewee.CharField(max_length=500, default="")
        unique_key = peewee.CharField(max_length=64, null=True, unique=True)
        created_by = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
        last_seq = peewee.BigIntegerField(default=0)
        last_message_at = peewee.DoubleField(null=True)
        created_at = peewee.DoubleField()
        updated_at = peewee.DoubleField()

        class Meta:
            database = db
            table_name = "conversation"

    class ConversationMember(peewee.Model):
        conversation = peewee.ForeignKeyField(Conversation, on_delete="CASCADE")
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        role = peewee.CharField(max_length=16, default="member")
        archived = peewee.BooleanField(default=False)
        muted = peewee.BooleanField(default=False)
        last_read_message_id = peewee.BigIntegerField(default=0)
        joined_at = peewee.DoubleField()

        class Meta:
            database = db
            table_name = "conversation_member"
            indexes = ((("conversation", "user"), True), (("user", "conversation"), False))

    class Message(peewee.Model):
        conversation = peewee.ForeignKeyField(Conversation, on_delete="CASCADE")
        sender = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
        body = peewee.TextField(default="")
        reply_to = peewee.BigIntegerField(null=True)
        attachments = peewee.TextField(default="[]")
        mentions = peewee.TextField(default="[]")
        seq = peewee.BigIntegerField()
        created_at = peewee.DoubleField()
        edited_at = peewee.DoubleField(null=True)
        deleted_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "message"
            indexes = ((("conversation", "id"), False), (("conversation", "seq"), False))

    class Reaction(peewee.Model):
        message = peewee.ForeignKeyField(Message, on_delete="CASCADE")
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        emoji = peewee.CharField(max_length=64)
        created_at = peewee.DoubleField()

        class Meta:
            database = db
            table_name = "reaction"
            indexes = ((("message", "user", "emoji"), True),)

    class ConversationEvent(peewee.Model):
        conversation = peewee.ForeignKeyField(Conversation, on_delete="CASCADE")
        seq = peewee.BigIntegerField()
        type = peewee.CharField(max_length=32)
        data = peewee.TextField()
        created_at = peewee.DoubleField()

        class Meta:
            database = db
            table_name = "conversation_event"
            indexes = ((("conversation", "seq"), True),)

    class Notification(peewee.Model):
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        kind = peewee.CharField(max_length=32)
        conversation = peewee.ForeignKeyField(Conversation, null=True, on_delete="CASCADE")
        message_id = peewee.BigIntegerField(null=True)
        actor = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL")
        text = peewee.CharField(max_length=500, default="")
        created_at = peewee.DoubleField()
        read_at = peewee.DoubleField(null=True)

        class Meta:
            database = db
            table_name = "notification"
            indexes = ((("user", "id"), False), (("user", "read_at"), False))

    db.create_tables([Conversation, ConversationMember, Message, Reaction, ConversationEvent,
                      Notification])
