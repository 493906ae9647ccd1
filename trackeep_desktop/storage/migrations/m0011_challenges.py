"""Challenges: ``challenge`` (title, period, who may join, one scoring rule) and
``challenge_participant`` (each member's score and when it was reached).

The participant table is the truth of every leaderboard; the leaderboard capability mirrors
it and is rebuilt from it. Named m0011 so it applies after m0009 and m0010 whichever of them
exist: the runner applies pending migrations in name order, and these tables depend only on
``users``.
"""

import peewee


def upgrade(db, migrator):
    class User(peewee.Model):
        id = peewee.AutoField()

        class Meta:
            database = db
            table_name = "users"

    class Challenge(peewee.Model):
        id = peewee.AutoField()
        creator = peewee.ForeignKeyField(User, on_delete="CASCADE")
        title = peewee.CharField(max_length=200)
        description = peewee.TextField(default="")
        start_date = peewee.CharField(max_length=10)  # YYYY-MM-DD in the creator's timezone
        end_date = peewee.CharField(max_length=10)  # inclusive
        timezone = peewee.CharField(max_length=64)
        starts_at = peewee.DoubleField()  # UTC epoch of start_date's midnight
        ends_at = peewee.DoubleField(index=True)  # UTC epoch of the midnight after end_date
        visibility = peewee.CharField(max_length=16)  # public or invite
        invite_token = peewee.CharField(max_length=64, unique=True)
        rule_type = peewee.CharField(max_length=32)
        rule_target = peewee.IntegerField()
        rule_tag = peewee.CharField(max_length=64, null=True)
        finished_at = peewee.DoubleField(null=True)  # standings frozen from then on
        created_at = peewee.DoubleField()

        class Meta:
            database = db
            table_name = "challenge"

    class ChallengeParticipant(peewee.Model):
        id = peewee.AutoField()
        challenge = peewee.ForeignKeyField(Challenge, on_delete="CASCADE")
        user = peewee.ForeignKeyField(User, on_delete="CASCADE")
        score = peewee.IntegerField(default=0)
        reached_at = peewee.BigIntegerField()  # whole seconds (see challenges.board_score)
        joined_at = peewee.DoubleField()

        class Meta:
            database = db
            table_name = "challenge_participant"
            indexes = (
                (("challenge", "user"), True),
                (("user",), False),
                (("challenge", "score", "reached_at"), False),
            )

    db.create_tables([Challenge, ChallengeParticipant])
