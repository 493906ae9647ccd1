"""Messaging (issue 10): conversations, messages, read state and notifications through the
API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions

from trackeep_desktop.messaging import is_emoji


class Chat:
    """The owner, ann, bob and cy, each with a token, and short-hands for the API."""

    def __init__(self, app):
        app.config.update(GENEROUS_LIMITS, FETCH_METADATA=False)
        self.actions = AuthActions(app)
        owner, user = self.actions.register_owner()
        self.tokens = {"owner": owner}
        self.ids = {"owner": user["id"]}
        for name in ("ann", "bob", "cyd"):
            self.ids[name] = self.actions.create_user(owner, name)["id"]
            self.tokens[name] = self.actions.token(name)

    def call(self, who: str, method: str, path: str, json=None, status: int | None = None):
        response = self.actions.api(method, path, self.tokens[who], json=json)
        if status is not None:
            assert response.status_code == status, (response.status_code,
                                                    response.get_json())
        return response

    def dm(self, who: str, other: str) -> dict:
        answer = self.call(who, "POST", "/messages/conversations",
                           {"type": "dm", "user_ids": [self.ids[other]]})
        assert answer.status_code in (200, 201), answer.get_json()
        return answer.get_json()["conversation"]

    def group(self, who: str, name: str, *members: str) -> dict:
        return self.call(who, "POST", "/messages/conversations",
                         {"type": "group", "name": name,
                          "user_ids": [self.ids[m] for m in members]},
                         status=201).get_json()["conversation"]

    def send(self, who: str, conversation_id: int, body: str, **extra) -> dict:
        return self.call(who, "POST", f"/messages/conversations/{conversation_id}/messages",
                         {"body": body, **extra}, status=201).get_json()["message"]

    def page(self, who: str, conversation_id: int, query: str = "") -> dict:
        return self.call(who, "GET", f"/messages/conversations/{conversation_id}/messages"
                         + query, status=200).get_json()


@pytest.fixture
def chat(app):
    return Chat(app)


def test_a_dm_is_one_per_pair_and_opening_it_again_returns_it(chat):
    first = chat.call("ann", "POST", "/messages/conversations",
                      {"type": "dm", "user_ids": [chat.ids["bob"]]}, status=201)
    again = chat.call("bob", "POST", "/messages/conversations",
                      {"type": "dm", "user_ids": [chat.ids["ann"]]}, status=200)
    assert first.get_json()["conversation"]["id"] == again.get_json()["conversation"]["id"]
    assert first.get_json()["conversation"]["type"] == "dm"
    detail = chat.call("bob", "GET", f"/messages/conversations/"
                       f"{again.get_json()['conversation']['id']}", status=200).get_json()
    assert sorted(m["username"] for m in detail["members"]) == ["ann", "bob"]
    assert detail["membership"]["user_id"] == chat.ids["bob"]


def test_notes_to_self_is_one_conversation_with_only_you(chat):
    mine = chat.call("ann", "POST", "/messages/conversations", {"type": "self"},
                     status=201).get_json()["conversation"]
    same = chat.call("ann", "POST", "/messages/conversations",
                     {"type": "dm", "user_ids": [chat.ids["ann"]]},
                     status=200).get_json()["conversation"]
    assert mine["id"] == same["id"]
    assert mine["type"] == "self"
    detail = chat.call("ann", "GET", f"/messages/conversations/{mine['id']}",
                       status=200).get_json()
    assert [m["username"] for m in detail["members"]] == ["ann"]


def test_bad_conversation_input_is_a_clear_400(chat):
    for body, field in (({"type": "dm", "user_ids": []}, None),
                        ({"type": "dm", "user_ids": [chat.ids["bob"], chat.ids["cyd"]]},
                         "user_ids"),
                        ({"type": "group", "user_ids": [chat.ids["bob"]]}, "name"),
                        ({"type": "space"}, "type"),
                        ({"type": "dm", "user_ids": [999_999]}, "user_ids"),
                        ({"type": "dm", "user_ids": "bob"}, "user_ids"),
                        ({"type": "group", "name": "x" * 101}, "name")):
        answer = chat.call("ann", "POST", "/messages/conversations", body)
        if field is None:  # a DM with nobody else is notes to self
            assert answer.status_code == 201
            continue
        assert answer.status_code == 400, body
        assert answer.get_json()["field"] == field


def test_a_stranger_gets_404_on_every_conversation_endpoint(chat):
    conversation = chat.dm("ann", "bob")
    message = chat.send("ann", conversation["id"], "just us")
    cid, mid = conversation["id"], message["id"]
    for method, path, body in (
            ("GET", f"/messages/conversations/{cid}", None),
            ("PATCH", f"/messages/conversations/{cid}", {"muted": True}),
            ("GET", f"/messages/conversations/{cid}/messages", None),
            ("POST", f"/messages/conversations/{cid}/messages", {"body": "hi"}),
            ("GET", f"/messages/conversations/{cid}/events", None),
            ("POST", f"/messages/conversations/{cid}/read", {}),
            ("POST", f"/messages/conversations/{cid}/members", {"user_id": chat.ids["cyd"]}),
            ("DELETE", f"/messages/conversations/{cid}/members/{chat.ids['ann']}", None),
            ("PATCH", f"/messages/messages/{mid}", {"body": "mine now"}),
            ("DELETE", f"/messages/messages/{mid}", None),
            ("POST", f"/messages/messages/{mid}/reactions", {"emoji": "👍"}),
            ("GET", "/messages/conversations/999999", None)):
        answer = chat.call("cyd", method, path, body)
        assert answer.status_code == 404, (method, path, answer.get_json())
        assert "error" in answer.get_json()
    listed = chat.call("cyd", "GET", "/messages/conversations", status=200).get_json()
    assert cid not in [c["id"] for c in listed["conversations"]]
    found = chat.call("cyd", "POST", "/messages/messages/search", {"query": "just"},
                      status=200).get_json()
    assert found["messages"] == []
    # and the message is untouched
    assert chat.page("bob", cid)["messages"][0]["body"] == "just us"


def test_send_edit_delete_keeps_the_threads_shape(chat):
    cid = chat.dm("ann", "bob")["id"]
    first = chat.send("ann", cid, "**hello** <script>alert(1)</script>")
    assert "<strong>hello</strong>" in first["body_html"]
    assert "<script" not in first["body_html"]
    reply = chat.send("bob", cid, "hi back", reply_to=first["id"])
    assert reply["reply_to"] == first["id"]
    edited = chat.call("ann", "PATCH", f"/messages/messages/{first['id']}", {"body": "hello!"},
                       status=200).get_json()["message"]
    assert edited["edited"] is True
    assert edited["edited_at"]
    assert edited["body"] == "hello!"
    chat.call("bob", "PATCH", f"/messages/messages/{first['id']}", {"body": "no"}, status=403)
    chat.call("bob", "DELETE", f"/messages/messages/{first['id']}", status=403)
    gone = chat.call("ann", "DELETE", f"/messages/messages/{first['id']}",
                     status=200).get_json()["message"]
    assert gone["deleted"] is True
    assert gone["body"] == ""
    assert gone["deleted_at"]
    page = chat.page("bob", cid)["messages"]
    assert [m["id"] for m in page] == [reply["id"], first["id"]]
    assert page[1]["deleted"] is True
    assert page[0]["reply_to"] == first["id"]


def test_bodies_are_bounded_and_a_message_needs_something(chat):
    cid = chat.dm("ann", "bob")["id"]
    path = f"/messages/conversations/{cid}/messages"
    too_long = chat.call("ann", "POST", path, {"body": "x" * 10_001}, status=400).get_json()
    assert too_long["field"] == "body"
    assert too_long["reason"] == "too_long"
    chat.call("ann", "POST", path, {"body": "x" * 10_000}, status=201)
    assert chat.call("ann", "POST", path, {"body": "   "}, status=400).get_json()["field"] \
        == "body"
    chat.call("ann", "POST", path, {"body": 12}, status=400)
    chat.call("ann", "POST", path, {"body": "a", "reply_to": 999_999}, status=400)


def test_reactions_one_per_user_and_emoji_and_only_emoji(chat):
    cid = chat.dm("ann", "bob")["id"]
    mid = chat.send("ann", cid, "react to me")["id"]
    path = f"/messages/messages/{mid}/reactions"
    first = chat.call("bob", "POST", path, {"emoji": "👍"}, status=200).get_json()["reaction"]
    again = chat.call("bob", "POST", path, {"emoji": "👍"}, status=200).get_json()["reaction"]
    assert first["id"] == again["id"]
    chat.call("ann", "POST", path, {"emoji": "👍"}, status=200)
    chat.call("ann", "POST", path, {"emoji": "👨‍👩‍👧"}, status=200)
    for bad in ("a", "ok", ":)", "", " ", "<b>", 5, "👍" * 40):
        answer = chat.call("bob", "POST", path, {"emoji": bad}, status=400)
        assert answer.get_json()["field"] == "emoji"
    reactions = chat.page("ann", cid)["messages"][0]["reactions"]
    assert reactions[0] == {"emoji": "👍", "count": 2,
                            "user_ids": [chat.ids["bob"], chat.ids["ann"]]}
    chat.call("bob", "DELETE", f"{path}/👍", status=204)
    chat.call("bob", "DELETE", f"{path}/👍", status=404)
    reactions = chat.page("ann", cid)["messages"][0]["reactions"]
    assert reactions[0]["user_ids"] == [chat.ids["ann"]]


def test_is_emoji():
    for good in ("👍", "❤️", "🇫🇷", "👍🏽", "1️⃣", "🏳️‍🌈", "☕"):
        assert is_emoji(good), good
    for bad in ("a", "1", "#", "👍 ", "é", "->", "\u200d"):
        assert not is_emoji(bad), bad


def test_cursor_paging_newest_first_and_before_is_the_same(chat):
    cid = chat.dm("ann", "bob")["id"]
    sent = [chat.send("ann", cid, f"m{i}")["id"] for i in range(7)]
    first = chat.page("bob", cid, "?limit=3")
    assert [m["id"] for m in first["messages"]] == sent[::-1][:3]
    second = chat.page("bob", cid, f"?limit=3&cursor={first['next_cursor']}")
    assert [m["id"] for m in second["messages"]] == sent[::-1][3:6]
    same = chat.page("bob", cid, f"?limit=3&before={first['next_cursor']}")
    assert same == second
    last = chat.page("bob", cid, f"?limit=3&cursor={second['next_cursor']}")
    assert [m["id"] for m in last["messages"]] == [sent[0]]
    assert last["next_cursor"] is None
    for query in ("?limit=0", "?limit=201", "?limit=x", "?cursor=abc", "?since=-1"):
        chat.call("bob", "GET", f"/messages/conversations/{cid}/messages{query}", status=400)


def test_unread_counts_per_conversation_and_in_total(chat):
    dm = chat.dm("ann", "bob")["id"]
    group = chat.group("ann", "Plans", "bob")["id"]
    for i in range(3):
        chat.send("ann", dm, f"dm {i}")
    last = chat.send("ann", group, "group")
    chat.send("bob", dm, "my own is never unread")
    unread = chat.call("bob", "GET", "/messages/unread", status=200).get_json()
    # bob's own message marks the DM read up to it
    assert unread["conversations"].get(str(dm), 0) == 0
    assert unread["conversations"][str(group)] == 1
    assert unread["total"] == 1
    chat.send("ann", dm, "one more")
    listed = {c["id"]: c for c in chat.call("bob", "GET", "/messages/conversations",
                                            status=200).get_json()["conversations"]}
    assert listed[dm]["unread_count"] == 1
    assert listed[group]["unread_count"] == 1
    assert listed[dm]["last_message"]["body"] == "one more"
    assert listed[dm]["peer"]["username"] == "ann"
    read = chat.call("bob", "POST", f"/messages/conversations/{group}/read",
                     {"message_id": last["id"]}, status=200).get_json()
    assert read["membership"]["last_read_message_id"] == last["id"]
    assert read["unread_total"] == 1
    chat.call("bob", "POST", f"/messages/conversations/{dm}/read", status=200)
    assert chat.call("bob", "GET", "/messages/unread", status=200).get_json()["total"] == 0
    chat.call("bob", "POST", f"/messages/conversations/{dm}/read", {"message_id": last["id"]},
              status=400)  # a message of another conversation


def test_groups_roles_rename_leave_and_the_last_owner(chat):
    gid = chat.group("ann", "Team", "bob")["id"]
    chat.call("bob", "PATCH", f"/messages/conversations/{gid}", {"name": "Mine"}, status=403)
    chat.call("bob", "POST", f"/messages/conversations/{gid}/members",
              {"user_id": chat.ids["cyd"]}, status=403)
    renamed = chat.call("ann", "PATCH", f"/messages/conversations/{gid}",
                        {"name": "Crew", "topic": "launch"}, status=200).get_json()
    assert renamed["conversation"]["name"] == "Crew"
    chat.call("ann", "POST", f"/messages/conversations/{gid}/members",
              {"user_id": chat.ids["cyd"], "role": "admin"}, status=201)
    chat.call("cyd", "GET", f"/messages/conversations/{gid}", status=200)
    # the last owner cannot leave without handing over
    left = chat.call("ann", "DELETE", f"/messages/conversations/{gid}/members/{chat.ids['ann']}",
                     status=409).get_json()
    assert left["reason"] == "last_owner"
    chat.call("cyd", "PATCH", f"/messages/conversations/{gid}/members/{chat.ids['bob']}",
              {"role": "owner"}, status=403)
    chat.call("ann", "PATCH", f"/messages/conversations/{gid}/members/{chat.ids['bob']}",
              {"role": "owner"}, status=200)
    chat.call("ann", "DELETE", f"/messages/conversations/{gid}/members/{chat.ids['ann']}",
              status=204)
    chat.call("ann", "GET", f"/messages/conversations/{gid}", status=404)
    # an admin removes a member, not an owner
    chat.call("cyd", "DELETE", f"/messages/conversations/{gid}/members/{chat.ids['bob']}",
              status=403)
    dm = chat.dm("ann", "bob")["id"]
    chat.call("ann", "POST", f"/messages/conversations/{dm}/members",
              {"user_id": chat.ids["cyd"]}, status=409)


def test_archive_and_mute_are_per_member(chat):
    gid = chat.group("ann", "Quiet", "bob")["id"]
    chat.call("bob", "PATCH", f"/messages/conversations/{gid}",
              {"archived": True, "muted": True}, status=200)
    mine = chat.call("bob", "GET", f"/messages/conversations/{gid}", status=200).get_json()
    assert mine["membership"]["archived"]
    assert mine["membership"]["muted"]
    hers = chat.call("ann", "GET", f"/messages/conversations/{gid}", status=200).get_json()
    assert not hers["membership"]["archived"]
    assert not hers["membership"]["muted"]
    archived = chat.call("bob", "GET", "/messages/conversations?archived=true",
                         status=200).get_json()["conversations"]
    assert [c["id"] for c in archived] == [gid]
    chat.call("bob", "PATCH", f"/messages/conversations/{gid}", {"muted": "yes"}, status=400)


def test_general_holds_every_active_user(chat):
    listed = chat.call("ann", "GET", "/messages/conversations", status=200).get_json()
    general = [c for c in listed["conversations"] if c["type"] == "general"]
    assert len(general) == 1
    gid = general[0]["id"]
    chat.send("ann", gid, "hello @bob and @nobody")
    bob = chat.call("bob", "GET", "/messages/conversations", status=200).get_json()
    assert [c["id"] for c in bob["conversations"] if c["type"] == "general"] == [gid]
    members = chat.call("cyd", "GET", f"/messages/conversations/{gid}", status=200).get_json()
    assert {m["username"] for m in members["members"]} == {"owner", "ann", "bob", "cyd"}


def test_mentions_dms_and_additions_notify_and_mute_keeps_only_mentions(chat):
    dm = chat.dm("ann", "bob")["id"]
    chat.send("ann", dm, "psst")
    gid = chat.group("ann", "Club", "bob", "cyd")["id"]
    message = chat.send("ann", gid, "ping @cyd")
    assert message["mentions"] == [chat.ids["cyd"]]
    kinds = [n["kind"] for n in chat.call("bob", "GET", "/notifications",
                                          status=200).get_json()["notifications"]]
    assert kinds == ["added", "direct_message"]
    cy = chat.call("cyd", "GET", "/notifications", status=200).get_json()
    assert [n["kind"] for n in cy["notifications"]] == ["mention", "added"]
    assert cy["unread_count"] == 2
    chat.call("bob", "PATCH", f"/messages/conversations/{dm}", {"muted": True}, status=200)
    chat.send("ann", dm, "are you there")
    chat.send("ann", dm, "@bob are you there")
    bob = chat.call("bob", "GET", "/notifications?unread=true", status=200).get_json()
    assert [n["kind"] for n in bob["notifications"]] == ["mention", "added", "direct_message"]
    first = bob["notifications"][0]["id"]
    one = chat.call("bob", "POST", f"/notifications/{first}/read", status=200).get_json()
    assert one["notification"]["read"] is True
    chat.call("cyd", "POST", f"/notifications/{first}/read", status=404)
    done = chat.call("bob", "POST", "/notifications/read", {"all": True}, status=200).get_json()
    assert done == {"marked": 2, "unread_count": 0}
    assert chat.call("cyd", "GET", "/notifications", status=200).get_json()["unread_count"] == 2


def test_attachments_are_cards_of_the_senders_own_items(chat):
    note = chat.call("ann", "POST", "/notes", {"title": "Secret plan", "content": "details"},
                     status=201).get_json()
    bobs = chat.call("bob", "POST", "/notes", {"title": "Bob's"}, status=201).get_json()
    cid = chat.dm("ann", "bob")["id"]
    sent = chat.send("ann", cid, "see this", attachments=[{"type": "note", "id": note["id"]}])
    assert sent["attachments"] == [{"type": "note", "id": note["id"], "title": "Secret plan"}]
    seen = chat.page("bob", cid)["messages"][0]
    assert seen["attachments"][0]["title"] == "Secret plan"
    assert "details" not in str(seen)
    chat.call("bob", "GET", f"/notes/{note['id']}", status=404)  # the card, not the item
    for bad in ([{"type": "note", "id": bobs["id"]}], [{"type": "user", "id": 1}], "x",
                [{"type": "note", "id": "one"}], [{"type": {}, "id": 1}],
                [{"type": ["note"], "id": 1}]):
        chat.call("ann", "POST", f"/messages/conversations/{cid}/messages",
                  {"body": "x", "attachments": bad}, status=400)
    # references (the original's name) are attachments too; a card alone is a message
    alone = chat.send("ann", cid, "", references=[{"type": "note", "id": note["id"]}])
    assert alone["attachments"][0]["id"] == note["id"]


def test_search_finds_members_messages_by_text_sender_and_conversation(chat):
    dm = chat.dm("ann", "bob")["id"]
    gid = chat.group("bob", "Gardeners", "cyd")["id"]
    chat.send("ann", dm, "Tomatoes are ripe")
    chat.send("bob", dm, "tomatoes? great")
    chat.send("cyd", gid, "TOMATOES everywhere")
    chat.send("bob", gid, "100% sure_thing")

    def search(who, **body):
        answer = chat.call(who, "POST", "/messages/messages/search", body, status=200)
        return [m["body"] for m in answer.get_json()["messages"]]

    assert search("bob", query="tomatoes") == ["TOMATOES everywhere", "tomatoes? great",
                                               "Tomatoes are ripe"]
    assert search("ann", query="tomatoes") == ["tomatoes? great", "Tomatoes are ripe"]
    assert search("bob", query="tomatoes", sender_id=chat.ids["ann"]) == ["Tomatoes are ripe"]
    assert search("bob", query="tomatoes", conversation_id=gid) == ["TOMATOES everywhere"]
    assert search("bob", query="0% s") == ["100% sure_thing"]
    assert search("bob", query="%") == ["100% sure_thing"]
    chat.call("bob", "POST", "/messages/messages/search", {"query": ""}, status=400)


def test_api_keys_need_messages_write_and_read_covers_reading(chat):
    cid = chat.dm("ann", "bob")["id"]
    reader, _ = chat.actions.create_key(chat.tokens["ann"], ["read"])
    writer, _ = chat.actions.create_key(chat.tokens["ann"], ["messages:write"])
    path = f"/messages/conversations/{cid}/messages"
    assert chat.actions.api("GET", path, reader).status_code == 200
    assert chat.actions.api("POST", path, reader, json={"body": "x"}).status_code == 403
    assert chat.actions.api("POST", path, writer, json={"body": "x"}).status_code == 201
    notes_only, _ = chat.actions.create_key(chat.tokens["ann"], ["notes:write"])
    assert chat.actions.api("POST", path, notes_only, json={"body": "x"}).status_code == 403


def test_bad_bodies_are_json_4xx(chat):
    cid = chat.dm("ann", "bob")["id"]
    client = chat.actions.client
    for path in (f"/api/v1/messages/conversations/{cid}/messages", "/api/v1/messages/"
                 "conversations", "/api/v1/messages/messages/search"):
        for data, kind in (("not json", "application/json"), ("[1]", "application/json"),
                           ("x", "text/plain")):
            answer = client.post(path, data=data, content_type=kind,
                                 headers={"Authorization": f"Bearer {chat.tokens['ann']}"})
            assert 400 <= answer.status_code < 500, (path, data)
            assert "error" in answer.get_json()


def test_events_log_numbers_each_change_in_order(chat):
    cid = chat.dm("ann", "bob")["id"]
    first = chat.send("ann", cid, "one")
    chat.call("bob", "POST", f"/messages/messages/{first['id']}/reactions", {"emoji": "🎉"},
              status=200)
    chat.call("ann", "PATCH", f"/messages/messages/{first['id']}", {"body": "uno"}, status=200)
    events = chat.call("bob", "GET", f"/messages/conversations/{cid}/events?since=0",
                       status=200).get_json()
    assert [(e["seq"], e["type"]) for e in events["events"]] == [
        (1, "message.created"), (2, "reaction.added"), (3, "message.updated")]
    assert events["events"][0]["data"]["id"] == first["id"]
    assert first["seq"] == 1
    later = chat.call("bob", "GET", f"/messages/conversations/{cid}/events?since=2",
                      status=200).get_json()
    assert [e["seq"] for e in later["events"]] == [3]
    assert later["more"] is False
    since = chat.page("bob", cid, "?since=0")["messages"]
    assert [m["id"] for m in since] == [first["id"]]


@pytest.mark.sqlite_only
def test_a_page_of_messages_is_read_through_the_conversation_index(chat, app):
    """A 100,000-message conversation opens as fast as a new one: the page query walks the
    ``(conversation, id)`` index backwards from the cursor, never the table."""
    from trackeep_desktop.storage.db import connection
    from trackeep_desktop.storage.models import Message

    cid = chat.dm("ann", "bob")["id"]
    with connection(app.extensions["trackeep"].db) as db:
        query = (Message.select().where(Message.conversation == cid, Message.id < 500)
                 .order_by(Message.id.desc()).limit(51))
        sql, params = query.sql()
        plan = " ".join(str(row[-1]) for row in
                        db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
    assert "USING INDEX message_conversation_id_id" in plan or \
        "USING COVERING INDEX message_conversation_id_id" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort: the index gives the order


def test_everyone_active_may_be_messaged_and_the_last_member_out_ends_a_group(chat):
    users = chat.call("ann", "GET", "/messages/users", status=200).get_json()["users"]
    assert [u["username"] for u in users] == ["bob", "cyd", "owner"]
    chat.call("owner", "PATCH", f"/admin/users/{chat.ids['cyd']}", {"is_active": False})
    users = chat.call("ann", "GET", "/messages/users", status=200).get_json()["users"]
    assert "cyd" not in [u["username"] for u in users]
    answer = chat.call("ann", "POST", "/messages/conversations",
                       {"type": "dm", "user_ids": [chat.ids["cyd"]]}, status=400)
    assert answer.get_json()["field"] == "user_ids"
    solo = chat.group("ann", "Solo")
    chat.send("ann", solo["id"], "echo")
    chat.call("ann", "DELETE", f"/messages/conversations/{solo['id']}/members/{chat.ids['ann']}",
              status=204)
    chat.call("ann", "GET", f"/messages/conversations/{solo['id']}", status=404)


def test_concurrent_senders_get_consecutive_sequence_numbers(chat, app):
    """The seq is assigned under the conversation row's lock in each write's transaction:
    four people sending at once still number the events 1, 2, 3... with no gap or repeat."""
    import threading

    gid = chat.group("ann", "Busy", "bob", "cyd", "owner")["id"]
    start = chat.call("ann", "GET", f"/messages/conversations/{gid}",
                      status=200).get_json()["conversation"]["last_seq"]
    failures: list = []

    def send(name: str) -> None:
        client = app.test_client()
        for i in range(15):
            answer = client.post(f"/api/v1/messages/conversations/{gid}/messages",
                                 json={"body": f"{name} {i}"},
                                 headers={"Authorization": f"Bearer {chat.tokens[name]}"})
            if answer.status_code != 201:
                failures.append(answer.get_json())

    threads = [threading.Thread(target=send, args=(name,))
               for name in ("ann", "bob", "cyd", "owner")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    events = chat.call("bob", "GET", f"/messages/conversations/{gid}/events?since={start}",
                       status=200).get_json()["events"]
    assert [e["seq"] for e in events] == list(range(start + 1, start + 61))
    # ids follow the same order, so "read up to id N" never skips a later commit
    messages = chat.page("bob", gid, "?limit=100")["messages"][::-1]
    assert [m["seq"] for m in messages] == list(range(start + 1, start + 61))


def test_deleting_an_account_keeps_the_others_threads(chat):
    gid = chat.group("ann", "Stay", "bob")["id"]
    sent = chat.send("ann", gid, "from ann @bob")
    mine = chat.send("bob", gid, "from bob")
    chat.call("ann", "POST", f"/messages/messages/{mine['id']}/reactions", {"emoji": "👍"},
              status=200)
    chat.call("bob", "PATCH", f"/messages/conversations/{gid}/members/{chat.ids['bob']}",
              {"role": "owner"}, status=403)  # ann is the owner; bob cannot promote himself
    chat.call("owner", "DELETE", f"/admin/users/{chat.ids['ann']}", status=200)
    page = chat.page("bob", gid)["messages"]
    assert [m["id"] for m in page] == [mine["id"], sent["id"]]
    assert page[1]["sender"] is None
    assert page[0]["reactions"] == []
    detail = chat.call("bob", "GET", f"/messages/conversations/{gid}", status=200).get_json()
    assert [m["username"] for m in detail["members"]] == ["bob"]
    notes = chat.call("bob", "GET", "/notifications", status=200).get_json()["notifications"]
    assert [n["actor_id"] for n in notes] == [None, None]
