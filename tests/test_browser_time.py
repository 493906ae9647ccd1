"""Time tracking in headless Chromium: start a timer on a task row, watch it run in the
header, stop it from the header, find it in the Time page's week grid, add a forgotten entry
with the form; no console errors, no CSP violations."""

from __future__ import annotations

import datetime as dt

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions
from browser import DESKTOP, screenshot, sign_in

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
    http = ThreadServer(app)
    http.actions = actions
    http.token = owner
    try:
        yield http
    finally:
        http.stop()


@pytest.fixture
def page(chromium, server):
    context = chromium.new_context(viewport=DESKTOP, base_url=server.url, color_scheme="light",
                                   timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # the refused entry's 400 is logged by the browser as a failed resource: expected here
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and (
        "status of 400" not in msg.text) else None)
    sign_in(page, server.url)
    yield page
    context.close()
    assert not errors, errors


def test_a_timer_on_a_task_runs_in_the_header_and_lands_in_the_week(page, server):
    actions, token = server.actions, server.token
    task = actions.api("POST", "/tasks", token, json={"title": "Draft the proposal"}).get_json()
    page.goto("/tasks")
    start = page.locator(f".timer-on-task[data-task='{task['id']}']")
    expect(start).to_have_attribute("aria-label", "Start a timer on “Draft the proposal”")
    expect(page.locator("#timer")).to_be_visible()
    expect(page.locator("#timer")).not_to_have_class("timer on")
    start.click()

    # the header shows the running timer, ticking; the row's button now stops it
    timer = page.locator("#timer")
    expect(timer).to_have_class("timer on")
    expect(page.locator("#timer-label")).to_have_text("Draft the proposal")
    expect(page.locator("#timer-elapsed")).to_have_text("0:02", timeout=5_000)
    expect(start).to_have_attribute("aria-label", "Stop the timer on “Draft the proposal”")
    running = actions.api("GET", "/time-entries/running", token).get_json()["time_entry"]
    assert running["task_id"] == task["id"]
    screenshot(page, "time-header-timer")

    # the header timer follows to another page, still running, and stops from there
    page.goto("/notes")
    expect(page.locator("#timer")).to_have_class("timer on")
    expect(page.locator("#timer-label")).to_have_text("Draft the proposal")
    page.click("#timer-toggle")
    expect(page.locator("#timer")).not_to_have_class("timer on")
    expect(page.locator("#timer-elapsed")).to_have_text("")
    stopped = actions.api("GET", f"/time-entries/{running['id']}", token).get_json()
    assert stopped["time_entry"]["is_running"] is False
    seconds = stopped["time_entry"]["duration"]
    assert seconds >= 2

    # the week view has the task's row with its time on today's column
    page.goto("/time")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    row = page.locator(f"#week-grid tbody tr[data-key='{task['id']}']")
    expect(row.locator("th")).to_have_text("Draft the proposal")
    expect(row.locator(f"td[data-day='{today}']")).to_have_text(f"{seconds}s")
    expect(page.locator("#entries li", has_text="Draft the proposal")).to_contain_text(
        f"0:{seconds:02d}")

    # a forgotten hour, added with the form, on the same task, shows in the grid too
    page.fill("#e-date", today)
    page.fill("#e-start", "00:00")
    page.fill("#e-end", "01:00")
    page.select_option("#e-task", str(task["id"]))
    page.fill("#e-description", "Research")
    page.fill("#e-tags", "client")
    page.click("#entry-form button[type=submit]")
    expect(row.locator(f"td[data-day='{today}']")).to_have_text("1:00")
    expect(page.locator("#entries li", has_text="Research")).to_contain_text("1:00:00")
    page.click("#rows-by button[data-value=tag]")
    expect(page.locator("#week-grid tbody tr[data-key='client'] th")).to_have_text("client")
    # a refused entry says why, and adds nothing
    page.fill("#e-date", "3000-01-01")
    page.click("#entry-form button[type=submit]")
    expect(page.locator("#entry-error")).to_contain_text("future")
    assert actions.api("GET", "/time-entries", token).get_json()["total"] == 2
    page.click("#rows-by button[data-value=task]")
    screenshot(page, "time-week")

    # delete the forgotten hour: it leaves the grid, waits under "Deleted entries", and
    # comes back from there
    page.locator("#entries li", has_text="Research").get_by_role(
        "button", name="Delete this entry").click()
    expect(row.locator(f"td[data-day='{today}']")).to_have_text(f"{seconds}s")
    page.click("#deleted-box summary")
    expect(page.locator("#deleted-count")).to_have_text("(1)")
    page.get_by_role("button", name="Restore “Research”").click()
    expect(row.locator(f"td[data-day='{today}']")).to_have_text("1:00")
    expect(page.locator("#deleted")).to_have_text("Nothing deleted.")
    page.emulate_media(color_scheme="dark")  # the theme is "system": the dark one now
    screenshot(page, "time-week-dark")
