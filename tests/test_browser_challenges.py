"""The Challenges pages in headless Chromium: create a challenge from the form, join it, and
watch the leaderboard update live as another member completes tasks, with your own row
highlighted and the progress bars moving; no console errors, no CSP violations."""

from __future__ import annotations

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions
from browser import DESKTOP, screenshot, sign_in, wait_for_script

from processes import ThreadServer

pytestmark = pytest.mark.browser

TIMEOUT_MS = 10_000


def expect(target):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
def server(make_app):
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
def page(chromium, server):
    context = chromium.new_context(viewport=DESKTOP, base_url=server.url, color_scheme="light")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # the refused form's 400 is logged by the browser as a failed resource: expected here
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and (
        "status of 400" not in msg.text) else None)
    sign_in(page, server.url)
    yield page
    context.close()
    assert not errors, errors


def test_create_join_and_watch_the_board_move_live(page, server):
    page.goto("/challenges")
    expect(page.locator("#open .empty")).to_contain_text("No challenges yet")
    page.click("#new-challenge")
    page.fill("#challenge-title", "Ship it week")
    page.select_option("#challenge-rule", "complete_tasks")
    page.fill("#challenge-target", "4")
    expect(page.locator("#challenge-unit")).to_have_text("tasks completed")
    # a bad period is refused with the server's words, and nothing is created
    page.fill("#challenge-end", "2000-01-01")
    page.click("#challenge-form button[type=submit]")
    expect(page.locator("#challenge-error")).to_be_visible()
    assert server.actions.api("GET", "/community/challenges",
                              server.tokens["owner"]).get_json()["pagination"]["total"] == 0
    page.fill("#challenge-end", "2999-12-31")
    page.click("#challenge-form button[type=submit]")
    page.wait_for_url("**/challenges/*")
    expect(page.locator("#challenge-title")).to_have_text("Ship it week")
    expect(page.locator("#challenge-summary")).to_contain_text("4 tasks completed")
    wait_for_script(page, "window.trackeepChallenges && window.trackeepChallenges.connected")
    expect(page.locator("#board-live")).to_be_visible()

    page.click("#join-button")
    expect(page.locator("#board-rows tr.me")).to_contain_text("owner (you)")
    expect(page.locator("#my-rank")).to_have_text("Rank 1 of 1")

    # ann joins and completes three tasks through the API: the owner's page follows live
    actions, ann = server.actions, server.tokens["ann"]
    cid = int(page.locator("#challenge").get_attribute("data-id"))
    assert actions.api("POST", f"/community/challenges/{cid}/join", ann).status_code == 200
    for i in range(3):
        task = actions.api("POST", "/tasks", ann, json={"title": f"t{i}"}).get_json()["id"]
        assert actions.api("POST", f"/tasks/{task}/complete", ann).status_code == 200
    first = page.locator("#board-rows tr").first
    expect(first).to_contain_text("ann")
    expect(first.locator(".score")).to_have_text("3")
    expect(first.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "75")
    expect(page.locator("#board-rows tr.me .rank")).to_have_text("#2")
    expect(page.locator("#participants")).to_have_text("2 members")
    expect(page.locator("#my-rank")).to_have_text("Rank 2 of 2")
    screenshot(page, "challenge-leaderboard")

    # back on the list, the challenge is under "Yours" with the owner's progress
    page.click(".breadcrumb a")
    card = page.locator("#mine .challenge-card", has_text="Ship it week")
    expect(card).to_contain_text("0 / 4")
    expect(card).to_contain_text("2 members")
    screenshot(page, "challenges-list")
