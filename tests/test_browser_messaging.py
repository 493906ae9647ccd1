"""The Messages page in headless Chromium: two people in two browser contexts chat live,
see the unread badge and the typing line, reply and react, and the bell counts a mention."""

from __future__ import annotations

import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, PASSWORD, AuthActions
from browser import DESKTOP, screenshot, sign_in, wait_for_script

from processes import ThreadServer

pytestmark = pytest.mark.browser

TIMEOUT_MS = 10_000


def expect(target):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
def server(make_app):
    """A real server with the owner and ann; ``server.tokens`` holds their API tokens."""
    app = make_app(**GENEROUS_LIMITS, FETCH_METADATA=False)
    actions = AuthActions(app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    http = ThreadServer(app)
    http.actions = actions
    http.tokens = {"owner": owner, "ann": actions.token("ann")}
    try:
        yield http
    finally:
        http.stop()


@pytest.fixture
def two_pages(chromium, server):
    """The owner and ann, each signed in in a browser context of their own."""
    errors: list[str] = []
    contexts, pages = [], []
    for login, password in (("owner", OWNER["password"]), ("ann", PASSWORD)):
        context = chromium.new_context(viewport=DESKTOP, base_url=server.url,
                                       color_scheme="light")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("pageerror", lambda exc, page=page: errors.append(f"{page.url}: {exc}"))
        sign_in(page, server.url, login, password)
        contexts.append(context)
        pages.append(page)
    yield pages
    for context in contexts:
        context.close()
    assert not errors, errors


def open_messages(page) -> None:
    page.goto("/messages")
    wait_for_script(page, "window.trackeepMessages && window.trackeepMessages.connected")
    expect(page.locator(".conversation", has_text="#general")).to_be_visible()


def test_two_people_chat_live_with_unread_badges_typing_replies_and_reactions(two_pages):
    owner, ann = two_pages
    open_messages(owner)
    open_messages(ann)

    # the owner opens a DM with ann from the new-conversation dialog
    owner.click("#new-conversation")
    owner.select_option("dialog select", label="Ann (@ann)")
    owner.click("dialog button:has-text('Open')")
    expect(owner.locator("#thread-title")).to_have_text("Ann")
    owner.fill("#composer-input", "Hello **Ann**")
    owner.press("#composer-input", "Enter")
    expect(owner.locator(".msg .body strong")).to_have_text("Ann")

    # ann, looking at #general, sees the new DM arrive with an unread badge
    ann.click(".conversation:has-text('#general')")
    dm = ann.locator(".conversation", has_text="Olive Owner")
    expect(dm.locator(".unread")).to_have_text("1")
    expect(dm.locator(".last")).to_contain_text("Hello **Ann**")
    screenshot(ann, "messages-unread")
    dm.click()
    expect(ann.locator(".msg .body")).to_have_text("Hello Ann")
    expect(dm.locator(".unread")).to_have_count(0)

    # ann types: the owner sees it; Shift+Enter is a new line, Enter sends
    ann.click("#composer-input")
    ann.keyboard.type("Hi")
    expect(owner.locator("#typing")).to_have_text("ann is typing…")
    ann.keyboard.press("Shift+Enter")
    ann.keyboard.type("two lines")
    ann.keyboard.press("Enter")
    reply = owner.locator(".msg:not(.own)", has_text="two lines")
    expect(reply).to_be_visible()
    expect(reply.locator(".body")).to_contain_text("Hi")
    expect(owner.locator("#typing")).to_have_text("")

    # the owner replies to ann's message and reacts to it; ann sees both live
    reply.hover()
    reply.locator("button[aria-label='Reply']").click()
    expect(owner.locator("#replying")).to_be_visible()
    owner.fill("#composer-input", "Replying to you")
    owner.press("#composer-input", "Enter")
    expect(ann.locator(".msg", has_text="Replying to you").locator(".reply-quote")).to_contain_text(
        "You:")
    reply.hover()
    reply.locator("button[aria-label='React']").click()
    owner.click("dialog .emoji-picker button:has-text('🎉')")
    expect(ann.locator(".msg.own", has_text="two lines").locator(".reaction")).to_have_text(
        "🎉 1")

    # the bell counts the two direct messages, and a mention in #general rings it again
    expect(ann.locator("#bell-count")).to_have_text("2")
    owner.click(".conversation:has-text('#general')")
    owner.fill("#composer-input", "Welcome @ann")
    owner.press("#composer-input", "Enter")
    expect(ann.locator("#bell-count")).to_have_text("3")
    screenshot(owner, "messages-thread")
    ann.click("#bell")
    expect(ann.locator("dialog .notifications li").first).to_contain_text("mentioned you")
    ann.click("dialog button:has-text('Mark all read')")
    expect(ann.locator("#bell-count")).to_be_hidden()


def test_scrolling_up_loads_older_messages(two_pages, server):
    owner, _ = two_pages
    actions, token = server.actions, server.tokens["ann"]
    ann_id = actions.api("GET", "/auth/me", token).get_json()["user"]["id"]
    cid = actions.api("POST", "/messages/conversations", server.tokens["owner"],
                      json={"type": "dm", "user_ids": [ann_id]}).get_json()["conversation"]["id"]
    for i in range(130):
        assert actions.api("POST", f"/messages/conversations/{cid}/messages", token,
                           json={"body": f"line {i}"}).status_code == 201
    owner.goto(f"/messages#c{cid}")
    expect(owner.locator(".msg", has_text="line 129")).to_be_visible()
    expect(owner.locator(".msg")).to_have_count(50)
    for count in (100, 130):
        owner.locator("#messages").evaluate("node => { node.scrollTop = 0; }")
        expect(owner.locator(".msg")).to_have_count(count)
    expect(owner.locator(".msg").first).to_contain_text("line 0")
    dm = owner.locator(".conversation", has_text="Ann")
    expect(dm.locator(".unread")).to_have_count(0)  # opened: read
