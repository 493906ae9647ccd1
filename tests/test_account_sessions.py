"""Session lifecycle in the accounts domain, with no Flask: the capabilities, the time and
the settings are arguments, as the views (through web.auth) and the CLI pass them."""

from __future__ import annotations

import pytest

from trackeep_desktop import accounts
from trackeep_desktop.accounts import sessions
from trackeep_desktop.capabilities.pubsub import MemoryPubSub
from trackeep_desktop.capabilities.sessions import MemorySessionStore
from trackeep_desktop.clock import ManualClock

SETTINGS = {"SESSION_TTL": 3600, "SESSION_REMEMBER_TTL": 30 * 86400}


@pytest.fixture
def lifecycle(database):
    clock = ManualClock(1_800_000_000.0)
    store = MemorySessionStore(clock=clock)
    pubsub = MemoryPubSub(clock=clock)
    ended: list[list[str]] = []
    pubsub.subscribe(sessions.SESSIONS_ENDED_CHANNEL,
                     lambda channel, message: ended.append(message["handles"]))
    owner = accounts.create_owner("owner@example.com", "owner", "owner-pass-123",
                                  now=clock.now(), min_password_length=8)
    ann = accounts.create_user("ann@example.com", "ann", "ann-pass-456", now=clock.now(),
                               min_password_length=8)

    def start(user, remember=False, agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"):
        return sessions.start_session(
            store, user, now=clock.now(), ttl=sessions.session_ttl(SETTINGS, remember),
            ip="192.0.2.7", user_agent=agent, remember=remember, kind="web")

    return store, pubsub, ended, owner, ann, start


def test_a_started_session_carries_the_request_details_and_the_ttl(lifecycle):
    store, _, _, owner, _, start = lifecycle
    remembered = start(owner, remember=True, agent="x" * 300)
    assert remembered["ttl"] == SETTINGS["SESSION_REMEMBER_TTL"]
    assert remembered["ip"] == "192.0.2.7"
    assert len(remembered["user_agent"]) == 256
    assert remembered["remember"] is True
    assert len(remembered["csrf"]) >= 32
    assert start(owner)["ttl"] == SETTINGS["SESSION_TTL"]
    assert store.get(remembered["id"])["user_id"] == owner.id
    assert accounts.get_user(owner.id).last_login_at is not None


def test_sessions_are_listed_by_handle_with_the_current_one_marked(lifecycle):
    store, _, _, owner, _, start = lifecycle
    first, second = start(owner), start(owner)
    listed = sessions.list_sessions(store, owner.id, current_id=second["id"])
    assert {s["id"] for s in listed} == {accounts.session_handle(first["id"]),
                                        accounts.session_handle(second["id"])}
    assert [s["current"] for s in listed if s["id"] == accounts.session_handle(
        second["id"])] == [True]
    assert all(first["id"] not in str(s) and second["id"] not in str(s) for s in listed)


def test_revoking_by_handle_ends_only_that_session_and_announces_it(lifecycle):
    store, pubsub, ended, owner, ann, start = lifecycle
    mine, theirs = start(owner), start(ann)
    handle = accounts.session_handle(theirs["id"])
    assert sessions.revoke_session(store, pubsub, owner, handle) is False  # not the owner's
    assert store.get(theirs["id"]) is not None
    assert ended == []
    assert sessions.revoke_session(store, pubsub, owner,
                                   accounts.session_handle(mine["id"])) is True
    assert store.get(mine["id"]) is None
    assert ended == [[accounts.session_handle(mine["id"])]]


def test_ending_a_users_sessions_keeps_the_one_asked_and_announces_the_rest(lifecycle):
    store, pubsub, ended, owner, ann, start = lifecycle
    keep, other, elsewhere = start(owner), start(owner), start(ann)
    assert sessions.end_sessions(store, pubsub, owner.id, keep=keep["id"]) == 1
    assert store.get(keep["id"]) is not None
    assert store.get(other["id"]) is None
    assert store.get(elsewhere["id"]) is not None
    assert ended == [[accounts.session_handle(other["id"])]]
    assert sessions.end_sessions(store, pubsub, owner.id) == 1
    assert sessions.end_sessions(store, pubsub, owner.id) == 0
    assert len(ended) == 2  # nothing ended, nothing announced
