"""The web UI in headless Chromium against a real server (threaded, real WebSockets): set-up,
sign-in, each kind of item end to end, the trash, live updates, the phone layout, keyboard
shortcuts, and a screenshot of every page in test-artifacts/screenshots/.

Every test fails on an uncaught JavaScript error in the page.
"""

from __future__ import annotations

import dataclasses
import io
import re
import socket
import struct
import time

import pytest
from auth_actions import GENEROUS_LIMITS, OWNER, AuthActions
from browser import (
    DESKTOP,
    PHONE,
    ROOT,
    screenshot,
    sign_in,
    wait_for_script,
    wait_live,
)

from clocks import wait_until
from processes import ThreadServer

pytestmark = pytest.mark.browser

TIMEOUT_MS = 10_000


# ------------------------------------------------------------------------------- fixtures


@dataclasses.dataclass
class Live:
    """A running server: its app, base URL, and API actions against the same app."""

    app: object
    url: str
    actions: AuthActions
    token: str = ""

    def api(self, method: str, path: str, json=None):
        """An API call as the owner (bearer token), asserting a 2xx answer."""
        response = self.actions.api(method, path, self.token, json=json)
        assert 200 <= response.status_code < 300, (path, response.get_json())
        return response.get_json()


@pytest.fixture
def server_config():
    """Settings of the test's server; a test may override it with ``parametrize``. Page
    details are not fetched by default: tests must not reach the internet."""
    return {"FETCH_METADATA": False}


@pytest.fixture
def server(make_app, server_config):
    """A real server on a free port for one test (see ``owner`` for its first account)."""
    app = make_app(**{**GENEROUS_LIMITS, **server_config})
    http = ThreadServer(app)
    try:
        yield Live(app, http.url, AuthActions(app))
    finally:
        http.stop()


@pytest.fixture
def owner(server):
    """The owner, set up through the API; ``server.token`` is their bearer token."""
    server.token, _ = server.actions.register_owner()
    return server


def _new_page(chromium, server, viewport, errors, **options):
    context = chromium.new_context(viewport=viewport, base_url=server.url,
                                   accept_downloads=True, **options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    return context, page


@pytest.fixture
def page(chromium, server):
    """A desktop-sized page in light mode; the test fails on any uncaught script error."""
    errors: list[str] = []
    context, page = _new_page(chromium, server, DESKTOP, errors, color_scheme="light")
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def signed_in(owner, page):
    """The owner signed in through the login form, on the dashboard."""
    sign_in(page, owner.url)
    return page


def expect(target):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def expect_toast(page, text: str, error: bool = False):
    """A toast with ``text`` shows (an error toast if ``error``); returns it."""
    toast = page.locator(".toast.error" if error else ".toast", has_text=text)
    expect(toast).to_be_visible()
    return toast


# ----------------------------------------------------------------------- set-up, sign-in


def test_first_run_sets_up_the_owner_then_signs_in_and_out(server, page):
    page.goto(server.url)
    assert page.url == f"{server.url}/setup"
    screenshot(page, "setup")
    page.fill("#f-full_name", OWNER["fullName"])
    page.fill("#f-email", OWNER["email"])
    page.fill("#f-username", OWNER["username"])
    page.fill("#f-password", OWNER["password"])
    page.fill("#f-password_confirm", OWNER["password"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    expect(page.locator("h1")).to_have_text(f"Welcome, {OWNER['fullName']}")

    page.click("button[aria-label='Sign out']")
    page.wait_for_url(re.compile(r"/login"))
    screenshot(page, "login")
    page.fill("#f-login", "owner")
    page.fill("#f-password", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator(".alert.error")).to_contain_text("Invalid")
    sign_in(page, server.url)
    expect(page.locator("h1")).to_have_text(f"Welcome, {OWNER['fullName']}")


# ------------------------------------------------------------------------------ bookmarks


def test_add_a_bookmark_then_favorite_it_and_refuse_a_duplicate(signed_in, owner):
    page = signed_in
    page.goto("/bookmarks")
    expect(page.locator(".empty h2")).to_have_text("No bookmarks yet")
    page.keyboard.press("n")  # the shortcut opens the form
    expect(page.locator("#b-url")).to_be_focused()
    page.fill("#b-url", "https://example.com/article")
    page.fill("#b-title", "An article to read")
    page.fill("#b-tags", "reading, later")
    screenshot(page, "bookmarks-new")
    page.click("#new-form button[type=submit]")

    row = page.locator("li.item", has_text="An article to read")
    expect(row).to_be_visible()
    expect(row.locator(".chip")).to_have_text(["later", "reading"])
    expect(page.locator("#total")).to_have_text("1 bookmark")
    [saved] = owner.api("GET", "/bookmarks")
    assert saved["url"] == "https://example.com/article"
    assert not saved["is_favorite"]

    row.get_by_role("button", name="Add to favorites").click()
    expect(row.get_by_role("button", name="Remove from favorites")).to_be_visible()
    assert owner.api("GET", f"/bookmarks/{saved['id']}")["is_favorite"] is True
    page.click("#filter button[data-value=favorites]")
    expect(page.locator("li.item")).to_have_count(1)

    page.click("#new-button")
    page.fill("#b-url", "https://example.com/article")
    page.click("#new-form button[type=submit]")
    expect_toast(page, "You already saved this URL.", error=True)
    assert len(owner.api("GET", "/bookmarks")) == 1  # offered, not doubled


@pytest.mark.parametrize("server_config", [{"FETCH_METADATA": True}])
def test_page_details_fetched_in_the_background_arrive_in_the_open_page(signed_in, owner):
    page = signed_in
    page.goto("/bookmarks")
    wait_live(page)
    page.click("#new-button")
    page.fill("#b-url", f"{owner.url}/login")  # a page of this very server, with a <title>
    page.click("#new-form button[type=submit]")
    expect(page.locator("li.item .item-title")).to_have_text("Sign in · Trackeep")
    [bookmark] = owner.api("GET", "/bookmarks")
    assert bookmark["fetch_status"] == "done"
    assert bookmark["title"] == "Sign in · Trackeep"


@pytest.mark.parametrize("server_config", [{"FETCH_METADATA": True}])
def test_a_failed_fetch_of_page_details_says_so_and_can_be_tried_again(signed_in, owner):
    page = signed_in
    closed = socket.socket()  # a port with nothing listening: the fetch fails at once
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}/gone"
    closed.close()
    saved = owner.api("POST", "/bookmarks", {"url": url})
    assert wait_until(lambda: owner.api("GET", f"/bookmarks/{saved['id']}")["fetch_status"]
                      == "failed")
    page.goto("/bookmarks")
    row = page.locator("li.item", has_text="127.0.0.1")
    expect(row.locator(".fetch-failed")).to_contain_text("details not fetched")
    with page.expect_response("**/fetch-metadata") as answer:
        row.get_by_role("button", name="Try again").click()
    assert answer.value.status == 202
    # It fails again (nothing listens there), and says so again.
    expect(row.locator(".fetch-failed")).to_be_visible()


# ---------------------------------------------------------------------------------- tasks


def test_add_and_complete_a_task(signed_in, owner):
    page = signed_in
    page.goto("/tasks")
    expect(page.locator(".empty h2")).to_have_text("No tasks yet")
    page.fill("#t-title", "Write the report")
    page.select_option("#t-priority", "high")
    page.click("#new-form button[type=submit]")
    row = page.locator("li.item", has_text="Write the report")
    expect(row.locator(".badge.high")).to_have_text("High")

    row.get_by_role("checkbox", name="Complete “Write the report”").click()
    expect_toast(page, "Done: “Write the report”.")
    expect(row).to_have_count(0)  # the Open list no longer shows it
    [task] = owner.api("GET", "/tasks")
    assert task["status"] == "completed"
    assert task["completed_at"]

    page.click("#filter button[data-value=completed]")
    done = page.get_by_role("checkbox", name="Reopen “Write the report”")
    expect(done).to_have_attribute("aria-checked", "true")


def test_a_task_due_today_is_due_not_overdue(signed_in, owner):
    page = signed_in
    today = page.evaluate("(() => { const d = new Date(); return `${d.getFullYear()}-"
                          "${String(d.getMonth() + 1).padStart(2, '0')}-"
                          "${String(d.getDate()).padStart(2, '0')}`; })()")
    owner.api("POST", "/tasks", {"title": "Due today", "due_date": today})
    owner.api("POST", "/tasks", {"title": "Due long ago", "due_date": "2020-01-15"})
    page.goto("/tasks")
    expect(page.locator("li.item", has_text="Due today")).to_contain_text("Due ")
    expect(page.locator("li.item", has_text="Due today").locator(".overdue")).to_have_count(0)
    expect(page.locator("li.item", has_text="Due long ago").locator(".overdue")).to_have_count(1)


def test_a_task_gets_a_due_day_or_a_due_time_of_day(signed_in, owner):
    page = signed_in
    page.goto("/tasks")
    page.fill("#t-title", "Dentist")
    page.fill("#t-due", "2031-07-01")
    page.fill("#t-due-time", "09:30")
    page.click("#new-form button[type=submit]")
    row = page.locator("li.item", has_text="Dentist")
    expect(row).to_contain_text("09:30")
    page.fill("#t-title", "Send the forms")
    page.fill("#t-due", "2031-07-02")
    page.click("#new-form button[type=submit]")
    expect(page.locator("li.item", has_text="Send the forms")).to_contain_text("Due Jul 2, 2031")
    by_title = {t["title"]: t for t in owner.api("GET", "/tasks")}
    # 09:30 in the browser's time zone, whatever it is.
    expected = page.evaluate("new Date('2031-07-01T09:30').toISOString()")
    assert by_title["Dentist"]["due_date"] == expected.replace(".000Z", "Z")
    # Editing shows the day and the time again.
    row.get_by_role("button", name="Edit").click()
    editor = page.locator("li.editing")
    expect(editor.locator("input[name=due_date]")).to_have_value("2031-07-01")
    expect(editor.locator("input[name=due_time]")).to_have_value("09:30")


def test_merge_a_tag_into_another_from_its_labelled_button(signed_in, owner):
    page = signed_in
    owner.api("POST", "/bookmarks", {"url": "https://a.example/", "tags": ["reading"]})
    owner.api("POST", "/notes", {"title": "List", "tags": ["to-read"]})
    page.goto("/tags")
    card = page.locator(".tag-card", has_text="to-read")
    button = card.get_by_role("button", name="Merge “to-read” into another tag")
    expect(button).to_have_text("Merge")  # words, not only a glyph
    button.click()
    page.locator("#merge-into").select_option(label="reading")
    page.locator("dialog").get_by_role("button", name="Merge").click()
    expect_toast(page, "“to-read” merged into “reading”.")
    expect(page.locator(".tag-card")).to_have_count(1)
    [tag] = owner.api("GET", "/tags")
    assert tag["name"] == "reading"
    assert [n["title"] for n in owner.api("GET", "/notes")] == ["List"]
    assert [t["name"] for t in owner.api("GET", "/notes")[0]["tags"]] == ["reading"]


def test_lists_filter_by_a_tag_from_a_chip_the_select_and_the_url(signed_in, owner):
    page = signed_in
    owner.api("POST", "/bookmarks", {"url": "https://a.example/", "title": "Tagged read",
                                     "tags": ["later"]})
    owner.api("POST", "/bookmarks", {"url": "https://b.example/", "title": "Plain read"})
    owner.api("POST", "/notes", {"title": "Tagged note", "tags": ["later"]})
    owner.api("POST", "/notes", {"title": "Plain note"})
    page.goto("/bookmarks")
    rows = page.locator("li.item")
    expect(rows).to_have_count(2)
    rows.filter(has_text="Tagged read").locator(".chip", has_text="later").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#tag-filter")).to_have_value("later")
    assert page.evaluate("location.search") == "?tag=later"
    page.locator("#tag-filter").select_option("")
    expect(rows).to_have_count(2)
    assert page.evaluate("location.search") == ""

    page.goto("/notes?tag=later")
    expect(page.locator(".note-list strong")).to_have_text(["Tagged note"])
    expect(page.locator("#tag-filter")).to_have_value("later")
    page.locator("#tag-filter").select_option("")
    expect(page.locator(".note-list strong")).to_have_count(2)


def test_a_search_result_link_scrolls_to_and_highlights_its_row(signed_in, owner):
    page = signed_in
    created = [owner.api("POST", "/tasks", json={"title": f"Errand {n}"}) for n in range(30)]
    target = created[3]
    page.set_viewport_size({"width": 1280, "height": 500})
    page.goto(f"/tasks#task-{target['id']}")
    row = page.locator("li.item", has_text="Errand 3").first
    expect(row).to_have_class(re.compile(r"\bflash\b"))
    expect(row).to_be_in_viewport()


def test_the_search_page_answers_as_you_type_with_tabs_keys_and_saved_searches(signed_in,
                                                                                 owner):
    page = signed_in
    owner.api("POST", "/notes", {"title": "Orbit notes", "content": "The <b>orbit</b> decays"})
    owner.api("POST", "/tasks", {"title": "Check the orbit"})
    owner.api("POST", "/bookmarks", {"url": "https://orbit.example/", "title": "Orbit guide",
                                     "tags": ["space"]})
    owner.api("POST", "/notes", {"title": "Lunch"})
    page.goto("/search")
    search_box = page.locator("#global-search")
    expect(search_box).to_be_focused()
    page.keyboard.type("orb*")
    results = page.locator("#search-results li.item")
    expect(results).to_have_count(3)
    expect(results.locator("mark").first).to_have_text(re.compile("orbit", re.I))
    # The note's "<b>" is text to show (SQLite) or left out of the snippet (PostgreSQL's
    # ts_headline drops tags), never markup; the snippet's match is marked either way.
    note_row = results.filter(has_text="Orbit notes")
    expect(note_row.locator("p.item-desc mark")).to_have_text(re.compile("orbit", re.I))
    expect(note_row.locator("p.item-desc")).to_contain_text("decays")
    expect(page.locator("#search-results b")).to_have_count(0)
    facets = page.locator("#search-facets")
    expect(facets.locator("a[data-type=''] .count")).to_have_text("3")
    expect(facets.locator("a[data-type=task] .count")).to_have_text("1")
    expect(results.filter(has_text="Orbit guide").locator(".chip")).to_have_text("space")
    assert page.evaluate("location.search") == "?q=orb*"
    screenshot(page, "search")

    results.filter(has_text="Orbit guide").locator(".chip").click()  # narrows to the tag
    expect(search_box).to_have_value("orb* tag:space")
    expect(results).to_have_count(1)
    search_box.fill("orb*")
    expect(results).to_have_count(3)

    facets.locator("a[data-type=note]").click()
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Orbit notes")
    facets.locator("a[data-type='']").click()
    expect(results).to_have_count(3)

    search_box.press("ArrowDown")
    expect(results.nth(0)).to_have_attribute("aria-selected", "true")
    search_box.press("ArrowDown")
    expect(results.nth(1)).to_have_attribute("aria-selected", "true")
    expect(results.nth(0)).to_have_attribute("aria-selected", "false")

    search_box.fill("orbit -guide")
    expect(results).to_have_count(2)
    search_box.fill('"orbit')  # an open quote while typing: said, not an error page
    expect(page.locator("#search-summary")).to_contain_text("quote")
    search_box.fill("orbit -guide")
    expect(results).to_have_count(2)
    page.locator("#save-search").click()
    page.locator("#saved-name").fill("Orbit work")
    page.get_by_role("button", name="Save", exact=True).click()
    saved = page.locator("nav.saved-searches a", has_text="Orbit work")
    expect(saved).to_be_visible()
    page.goto("/tasks")
    page.locator("nav.saved-searches a", has_text="Orbit work").click()
    expect(page.locator("#search-results li.item")).to_have_count(2)
    assert [s["name"] for s in owner.api("GET", "/search/saved")] == ["Orbit work"]


def test_a_task_gets_subtasks_and_is_edited_in_place(signed_in, owner):
    page = signed_in
    owner.api("POST", "/tasks", {"title": "Plan the trip"})
    page.goto("/tasks")
    row = page.locator("li.item", has_text="Plan the trip")
    row.get_by_role("button", name="Subtasks").click()
    row.get_by_placeholder("Add a subtask").fill("Book the train")
    row.get_by_role("button", name="Add", exact=True).click()
    expect(row.locator(".subtasks li")).to_have_text(["Book the train"])
    row.get_by_role("checkbox", name="Complete “Book the train”").click()
    expect(row.get_by_role("button", name="1/1 subtasks")).to_be_visible()

    row.get_by_role("button", name="Edit").click()
    editor = page.locator("li.editing")
    expect(editor.locator("input[name=title]")).to_be_focused()
    editor.locator("select[name=status]").select_option("in_progress")
    editor.locator("input[name=due_date]").fill("2031-05-17")
    screenshot(page, "tasks-editing")
    editor.get_by_role("button", name="Save").click()
    expect(row.locator(".badge", has_text="In progress")).to_be_visible()
    expect(row).to_contain_text("Due")
    [task] = owner.api("GET", "/tasks?parent_id=none")
    assert task["status"] == "in_progress"
    assert task["due_date"].startswith("2031-05-1")


# ---------------------------------------------------------------------------------- notes

HOSTILE_NOTE = """# Shopping list

Some **bold** text and a [link](https://example.com).

- eggs
- milk

<img src=x onerror="window.__pwned = 'raw html'">
<script>window.__pwned = 'script'</script>
[click me](javascript:window.__pwned='link')
![pic](x" onerror="window.__pwned='attribute')
"""


def test_write_a_note_in_markdown_and_nothing_in_it_runs(signed_in, owner):
    page = signed_in
    page.goto("/notes")
    expect(page.locator("#editor-empty .empty h2")).to_have_text("No notes yet")
    page.keyboard.press("n")
    expect(page.locator("#n-title")).to_be_focused()
    page.fill("#n-title", "Groceries")
    page.fill("#n-content", HOSTILE_NOTE)

    preview = page.locator("#preview")
    expect(preview.locator("h1")).to_have_text("Shopping list")
    expect(preview.locator("strong")).to_have_text("bold")
    expect(preview.locator("li")).to_have_text(["eggs", "milk"])
    expect(preview.locator("a[href='https://example.com']")).to_have_text("link")
    expect(page.locator("#save-state")).to_contain_text("Saved", timeout=TIMEOUT_MS)

    [note] = owner.api("GET", "/notes")
    assert note["title"] == "Groceries"
    assert note["content"] == HOSTILE_NOTE
    page.goto(f"/notes#note-{note['id']}")  # a fresh page renders the saved note
    page.reload()
    expect(page.locator("#n-title")).to_have_value("Groceries")
    expect(preview.locator("h1")).to_have_text("Shopping list")
    assert preview.locator("script, img[onerror], [onerror], a[href^='javascript']").count() == 0
    for link in preview.locator("a").all():
        link.click(modifiers=["Control"])  # even clicking every link runs nothing
    assert page.evaluate("window.__pwned") is None


def test_note_pin_and_delete_from_the_editor(signed_in, owner):
    page = signed_in
    first = owner.api("POST", "/notes", {"title": "Older", "content": "one"})
    owner.api("POST", "/notes", {"title": "Newer", "content": "two"})
    page.goto("/notes")
    expect(page.locator(".note-list strong")).to_have_text(["Newer", "Older"])
    page.locator(".note-list button", has_text="Older").click()
    page.click("#pin")
    expect(page.locator(".note-list strong")).to_have_text(["Older", "Newer"])
    assert owner.api("GET", f"/notes/{first['id']}")["is_pinned"] is True

    def answer_late(route):  # the live "deleted" event reaches the page before the answer
        response = route.fetch()
        time.sleep(0.5)
        route.fulfill(response=response)

    wait_live(page)
    page.route(f"**/api/v1/notes/{first['id']}", lambda route: answer_late(route)
               if route.request.method == "DELETE" else route.continue_())
    page.evaluate("""() => {
      window.shownToasts = [];
      new MutationObserver((changes) => changes.forEach((change) => change.addedNodes
        .forEach((node) => window.shownToasts.push(node.textContent))))
        .observe(document.getElementById("toasts"), { childList: true });
    }""")
    page.click("#delete")
    expect_toast(page, "“Older” moved to the trash")
    expect(page.locator(".note-list strong")).to_have_text(["Newer"])
    shown = page.evaluate("window.shownToasts")
    assert not [t for t in shown if "another window" in t], shown  # our own delete


# ---------------------------------------------------------------------------------- files


def test_upload_by_drop_and_by_chooser_then_preview_and_download(signed_in, owner, tmp_path):
    page = signed_in
    page.goto("/files")
    expect(page.locator(".empty h2")).to_have_text("No files yet")

    # Drag and drop: a DataTransfer with a file, dropped on the drop zone.
    page.evaluate("""() => {
      const data = new DataTransfer();
      data.items.add(new File(["hello from a drop\\n"], "dropped.txt", {type: "text/plain"}));
      const zone = document.getElementById("dropzone");
      zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true}));
      zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
    }""")
    upload = page.locator("#uploads li", has_text="dropped.txt")
    expect(upload).to_contain_text("Uploaded")
    expect(upload.locator(".progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("li.item", has_text="dropped.txt")).to_be_visible()
    screenshot(page, "files-uploaded")

    # The file chooser, with a bigger file: progress events reach 100%.
    big = tmp_path / "numbers.csv"
    big.write_text("".join(f"{i},{i * i}\n" for i in range(200_000)))
    page.set_input_files("#file-input", str(big))
    expect(page.locator("#uploads li", has_text="numbers.csv")).to_contain_text("Uploaded")
    row = page.locator("li.item", has_text="numbers.csv")
    expect(row).to_contain_text("MB")
    expect(page.locator("#total")).to_have_text("2 files")

    page.get_by_role("button", name="Preview dropped.txt").click()
    expect(page.locator("dialog[open] pre")).to_have_text("hello from a drop\n")
    page.keyboard.press("Escape")

    with page.expect_download() as download_info:
        row.get_by_role("link", name="Download numbers.csv").click()
    download = download_info.value
    assert download.suggested_filename == "numbers.csv"
    assert download.path().read_bytes() == big.read_bytes()
    assert {f["name"] for f in owner.api("GET", "/files")} == {"dropped.txt", "numbers.csv"}


# ---------------------------------------------------------------------------------- trash


def test_delete_then_restore_from_the_trash(signed_in, owner):
    page = signed_in
    owner.api("POST", "/bookmarks", {"url": "https://example.org/", "title": "Example org"})
    owner.api("POST", "/tasks", {"title": "Old chore"})
    page.goto("/bookmarks")
    page.locator("li.item", has_text="Example org").get_by_role(
        "button", name="Move to the trash").click()
    expect_toast(page, "moved to the trash")
    expect(page.locator(".empty h2")).to_have_text("No bookmarks yet")
    page.goto("/tasks")
    page.locator("li.item", has_text="Old chore").get_by_role(
        "button", name="Move to the trash").click()
    expect_toast(page, "moved to the trash")

    page.goto("/trash")
    expect(page.locator("li.item .item-title")).to_have_text(["Old chore", "Example org"])
    page.locator("li.item", has_text="Example org").get_by_role(
        "button", name="Restore “Example org”").click()
    expect_toast(page, "Bookmark “Example org” restored.")
    expect(page.locator("li.item .item-title")).to_have_text(["Old chore"])

    page.get_by_role("button", name="Delete “Old chore” for good").click()
    page.locator("dialog[open]").get_by_role("button", name="Delete for good").click()
    expect(page.locator(".empty h2")).to_have_text("The trash is empty")
    assert owner.api("GET", "/trash") == []
    assert owner.api("GET", "/tasks") == []
    page.goto("/bookmarks")
    expect(page.locator("li.item", has_text="Example org")).to_be_visible()


def test_undo_in_the_toast_restores_what_was_deleted(signed_in, owner):
    page = signed_in
    owner.api("POST", "/tasks", {"title": "Keep me"})
    page.goto("/tasks")
    page.locator("li.item", has_text="Keep me").get_by_role(
        "button", name="Move to the trash").click()
    expect_toast(page, "moved to the trash").get_by_role("button", name="Undo").click()
    expect(page.locator("li.item", has_text="Keep me")).to_be_visible()
    assert owner.api("GET", "/trash") == []


# ----------------------------------------------------------------------- import and export


def test_import_a_browsers_bookmark_file_then_export_everything(signed_in, owner):
    page = signed_in
    page.goto("/settings/data")
    form = page.locator("form[data-kind=bookmarks]")
    form.locator("input[type=file]").set_input_files(
        str(ROOT / "tests" / "fixtures" / "bookmarks" / "chrome.html"))
    form.get_by_role("button", name="Import bookmarks").click()
    report = form.locator(".alert.notice")
    expect(report).to_contain_text("4 bookmarks")
    expect(report).to_contain_text("Skipped 1 already saved and 1 not web links.")
    screenshot(page, "settings-data")
    assert len(owner.api("GET", "/bookmarks")) == 4

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download everything").click()
    archive = download_info.value
    assert archive.suggested_filename.endswith(".zip")
    assert archive.path().read_bytes()[:2] == b"PK"

    restore = page.locator("form[data-kind=archive]")
    restore.locator("input[type=file]").set_input_files(str(archive.path()))
    restore.get_by_role("button", name="Restore").click()
    expect(restore.locator(".alert.error")).to_contain_text("empty")  # the API's refusal


def test_back_up_now_shows_progress_then_lists_the_backup_to_download(signed_in, owner):
    page = signed_in
    owner.api("POST", "/bookmarks", {"url": "https://backup.example/", "title": "kept"})
    page.goto("/settings/data")
    page.get_by_role("link", name="Backups").click()
    expect(page.locator("#backup-list tbody")).to_contain_text("No backups yet.")
    page.get_by_role("button", name="Back up now").click()
    expect(page.locator("#backup-status .alert.notice")).to_contain_text("Backed up to")
    row = page.locator("#backup-list tbody tr").first
    expect(row).to_contain_text("trackeep-backup-")
    with page.expect_download() as download_info:
        row.get_by_role("link", name="Download").click()
    archive = download_info.value
    assert archive.suggested_filename.startswith("trackeep-backup-")
    from trackeep_desktop import backup

    assert backup.verify_archive(archive.path())["counts"]["bookmark"] == 1


# --------------------------------------------------------------------------- live updates


def test_an_api_edit_shows_up_in_the_open_page_without_a_reload(signed_in, owner):
    page = signed_in
    task = owner.api("POST", "/tasks", {"title": "Draft"})
    page.goto("/tasks")
    expect(page.locator("li.item .item-title")).to_have_text(["Draft"])
    wait_live(page)
    page.evaluate("window.__sameDocument = true")

    owner.api("PATCH", f"/tasks/{task['id']}", {"title": "Final", "priority": "urgent"})
    expect(page.locator("li.item .item-title")).to_have_text(["Final"])
    expect(page.locator("li.item .badge.urgent")).to_be_visible()
    owner.api("POST", "/tasks", {"title": "Added elsewhere"})
    expect(page.locator("li.item .item-title")).to_have_text(["Added elsewhere", "Final"])
    assert page.evaluate("window.__sameDocument") is True  # no reload happened

    page.goto("/")
    wait_live(page)
    owner.api("POST", "/notes", {"title": "From the phone"})
    expect(page.locator("[data-stat=note]")).to_have_text("1")
    expect(page.locator(".activity a").first).to_have_text("From the phone")


def test_an_open_note_follows_edits_from_elsewhere_unless_edited_here(signed_in, owner):
    page = signed_in
    note = owner.api("POST", "/notes", {"title": "Shared", "content": "first"})
    page.goto(f"/notes#note-{note['id']}")
    expect(page.locator("#n-content")).to_have_value("first")
    wait_live(page)
    owner.api("PATCH", f"/notes/{note['id']}", {"content": "# second"})
    expect(page.locator("#n-content")).to_have_value("# second")
    expect(page.locator("#preview h1")).to_have_text("second")

    page.fill("#n-content", "my own words")  # unsaved edits here are never overwritten
    owner.api("PATCH", f"/notes/{note['id']}", {"content": "third"})
    expect_toast(page, "This note was changed in another window.")
    expect(page.locator("#n-content")).to_have_value("my own words")


# --------------------------------------------------------------------- shell, phone, keys


def test_phone_width_collapses_the_sidebar(chromium, owner):
    errors: list[str] = []
    context, page = _new_page(chromium, owner, PHONE, errors, is_mobile=True, has_touch=True)
    try:
        sign_in(page, owner.url)
        owner.api("POST", "/tasks", {"title": "A task with a rather long title that must wrap "
                                              "on a phone instead of widening the page"})
        sidebar = page.locator("#sidebar")
        assert not sidebar.evaluate("el => el.getBoundingClientRect().right > 0")
        menu = page.get_by_role("button", name="Menu")
        expect(menu).to_be_visible()
        screenshot(page, "phone-dashboard")
        menu.click()
        expect(menu).to_have_attribute("aria-expanded", "true")
        wait_for_script(page,
                        "document.getElementById('sidebar').getBoundingClientRect().left >= 0")
        screenshot(page, "phone-menu")
        sidebar.get_by_role("link", name="Tasks").click()
        page.wait_for_url(f"{owner.url}/tasks")
        expect(page.locator("li.item")).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, "phone-tasks")
        note = owner.api("POST", "/notes", {"title": "On the go", "content": "- [x] works"})
        page.goto(f"/notes#note-{note['id']}")
        expect(page.locator("#n-content")).to_have_value("- [x] works")
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#preview li")).to_be_visible()
        expect(page.locator("#n-content")).to_be_hidden()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, "phone-notes")
        for path in ("/admin/users", "/settings/security"):  # wide tables scroll in place
            page.goto(path)
            expect(page.locator("table").first).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), \
                path
        screenshot(page, "phone-users")
    finally:
        context.close()
    assert not errors, errors


def test_keyboard_shortcuts_help_search_and_new(signed_in, owner):
    page = signed_in
    for title in ["Buy milk", "Call the bank", "Buy stamps"]:
        owner.api("POST", "/tasks", {"title": title})
    page.goto("/tasks")
    expect(page.locator("li.item")).to_have_count(3)
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    page.keyboard.press("/")
    expect(page.locator("#global-search")).to_be_focused()
    page.keyboard.type("buy")
    expect(page.locator("li.item .item-title")).to_have_text(["Buy stamps", "Buy milk"])
    page.keyboard.press("Escape")
    expect(page.locator("li.item")).to_have_count(3)

    page.keyboard.press("n")
    expect(page.locator("#t-title")).to_be_focused()
    page.keyboard.press("Escape")
    page.keyboard.press("g")
    page.keyboard.press("b")
    page.wait_for_url(f"{owner.url}/bookmarks")


def test_theme_switch_is_saved_to_the_profile(signed_in, owner):
    page = signed_in
    html = page.locator("html")
    expect(html).to_have_attribute("data-theme", "system")
    toggle = page.locator("#theme-toggle")
    toggle.click()
    expect(html).to_have_attribute("data-theme", "light")
    toggle.click()
    expect(html).to_have_attribute("data-theme", "dark")
    expect_toast(page, "Theme: dark")
    page.reload()
    expect(html).to_have_attribute("data-theme", "dark")
    assert owner.api("GET", "/auth/me")["user"]["theme"] == "dark"


def test_a_new_api_key_is_shown_at_the_top_and_copied_with_one_click(signed_in, owner):
    page = signed_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=owner.url)
    page.goto("/settings/security")
    page.fill("#f-key-name", "Backup script")
    page.get_by_role("button", name="Create a key").click()
    heading = page.get_by_role("heading", name="Copy your new key now")
    expect(heading).to_be_in_viewport()
    key = page.locator("#new-key-value").inner_text()
    assert key.startswith("tk_")
    expect(page.locator(".tabs a[aria-current=page]")).to_have_text("Security")
    page.get_by_role("button", name="Copy").click()
    expect_toast(page, "Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == key


def test_recent_activity_links_to_the_item_itself(signed_in, owner):
    page = signed_in
    task = owner.api("POST", "/tasks", {"title": "Call the plumber"})
    page.goto("/")
    link = page.locator(".activity a", has_text="Call the plumber")
    expect(link).to_have_attribute("href", f"/tasks#task-{task['id']}")
    link.click()
    page.wait_for_url(f"{owner.url}/tasks#task-{task['id']}")
    expect(page.locator("li.item", has_text="Call the plumber")).to_be_visible()


def test_the_search_box_answers_as_you_type_on_every_page(signed_in, owner):
    page = signed_in
    owner.api("POST", "/notes", {"title": "Harbour map", "content": "moorings"})
    owner.api("POST", "/bookmarks", {"url": "https://far.example/", "title": "Faraway lighthouse"})
    for n in range(60):  # the lighthouse, the oldest, is past the first page of the list
        owner.api("POST", "/bookmarks", {"url": f"https://example.com/{n}",
                                         "title": f"Bookmark number {n}"})
    page.goto("/settings/profile")
    page.fill("#global-search", "harbour")
    quick = page.locator("#quick-results")
    expect(quick.locator(".quick-result")).to_have_count(1)
    expect(quick.locator(".quick-result")).to_contain_text("Harbour map")
    expect(quick.locator(".quick-all")).to_have_attribute("href", "/search?q=harbour")
    page.keyboard.press("Escape")
    expect(quick).to_be_hidden()

    # On a list page the whole collection of its type is searched, not the loaded rows.
    page.goto("/bookmarks")
    expect(page.locator("li.item")).to_have_count(50)
    expect(page.locator("li.item", has_text="Faraway lighthouse")).to_have_count(0)
    page.fill("#global-search", "lighthouse")
    expect(quick.locator(".quick-result")).to_contain_text("Faraway lighthouse")
    page.fill("#global-search", "harbour")  # a note: not in the bookmarks' quick results
    expect(quick.locator(".quick-none")).to_be_visible()


def test_toasts_stack_at_most_three_and_do_not_repeat(signed_in, owner):
    page = signed_in
    page.evaluate("""import('/static/js/api.js').then((m) => {
        for (const n of [1, 2, 3, 4, 5, 5]) m.toast(`Saved ${n}`);
    })""")
    expect(page.locator(".toast")).to_have_count(3)
    assert page.locator(".toast .msg").all_inner_texts() == ["Saved 3", "Saved 4", "Saved 5"]


def test_a_refused_request_shows_the_servers_message(signed_in, owner):
    page = signed_in
    page.goto("/tags")
    page.fill("#tag-name", "x" * 65)
    page.click("#new-form button[type=submit]")
    toast = expect_toast(page, "64", error=True)  # the API's own words about the limit
    expect(toast).to_have_attribute("role", "alert")


# ---------------------------------------------------------------------------- screenshots


def seed(owner) -> None:
    """A little of everything, so the screenshots show pages in use."""
    owner.api("POST", "/tags", {"name": "reading", "color": "#3b82f6"})
    owner.api("POST", "/tags", {"name": "work", "color": "#10b981"})
    owner.api("POST", "/tags", {"name": "home", "color": "#f59e0b"})
    bookmarks = [
        ("https://docs.python.org/3/library/sqlite3.html", "sqlite3 — DB-API 2.0 interface",
         "The standard library's SQLite driver.", ["reading", "work"], True),
        ("https://flask.palletsprojects.com/en/stable/", "Welcome to Flask",
         "Flask's documentation.", ["work"], False),
        ("https://en.wikipedia.org/wiki/Markdown", "Markdown - Wikipedia", "", ["reading"], False),
        ("https://example.com/recipes/bread", "A simple sourdough bread",
         "Flour, water, salt and time.", ["home"], False),
    ]
    for url, title, description, tags, favorite in bookmarks:
        owner.api("POST", "/bookmarks", {"url": url, "title": title,
                                         "description": description, "tags": tags,
                                         "is_favorite": favorite})
    owner.api("PATCH", f"/bookmarks/{owner.api('GET', '/bookmarks')[-1]['id']}",
              {"is_read": True})
    trip = owner.api("POST", "/tasks", {"title": "Plan the summer trip", "priority": "medium",
                                        "due_date": "2031-07-01", "tags": ["home"],
                                        "description": "Trains, not planes."})
    owner.api("POST", "/tasks", {"title": "Book the train", "parent_id": trip["id"]})
    owner.api("POST", "/tasks", {"title": "Renew the passport", "priority": "urgent",
                                 "due_date": "2020-01-15", "tags": ["home"]})
    owner.api("POST", "/tasks", {"title": "Review the quarterly report", "priority": "high",
                                 "status": "in_progress", "progress": 60, "tags": ["work"]})
    owner.api("POST", "/tasks", {"title": "Water the plants", "priority": "low"})
    done = owner.api("POST", "/tasks", {"title": "Send the invoice", "priority": "medium"})
    owner.api("PATCH", f"/tasks/{done['id']}", {"status": "completed"})
    owner.api("POST", "/notes", {"title": "Meeting notes", "tags": ["work"], "content": (
        "# Weekly meeting\n\n**Decisions**\n\n- Ship the *desktop* build on Friday\n"
        "- Move the retro to Monday\n\n> Keep the release notes short.\n\n"
        "| Owner | Task |\n| --- | --- |\n| Ana | Build |\n| Ben | Docs |\n\n"
        "```\ntrackeep serve --port 8080\n```\n")})
    owner.api("POST", "/notes", {"title": "Reading list", "is_pinned": True,
                                 "tags": ["reading"],
                                 "content": "1. *The Pragmatic Programmer*\n2. *Designing "
                                            "Data-Intensive Applications*\n"})
    owner.api("POST", "/notes", {"title": "Ideas", "content": "A garden planner?"})
    png = (ROOT / "static" / "icons" / "trackeep.png").read_bytes()
    for name, data, description in [
            ("trackeep-logo.png", png, "The logo, for the slides."),
            ("notes.txt", b"Remember the milk.\n", ""),
            ("budget-2031.csv", b"month,amount\n" + b"jan,100\n" * 2000, "Household budget")]:
        response = owner.actions.client.post(
            "/api/v1/files/upload", headers={"Authorization": f"Bearer {owner.token}"},
            data={"file": (io.BytesIO(data), name), "description": description})
        assert response.status_code == 201, response.get_json()
    gone = owner.api("POST", "/bookmarks", {"url": "https://example.net/old",
                                            "title": "An old link"})
    owner.api("DELETE", f"/bookmarks/{gone['id']}")
    scrap = owner.api("POST", "/notes", {"title": "Scratch", "content": "…"})
    owner.api("DELETE", f"/notes/{scrap['id']}")


def assert_screenshot(path, width: int = DESKTOP["width"], min_height: int = DESKTOP["height"]):
    """``path`` is a PNG of the whole page: the viewport's width, at least its height."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    shot_width, shot_height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    assert shot_width == width, (path.name, shot_width)
    assert shot_height >= min_height, (path.name, shot_height)
    assert len(data) > 20_000, f"{path.name} is nearly empty ({len(data)} bytes)"


def test_screenshot_of_every_page(signed_in, owner):
    page = signed_in
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(
        f"{page.url}: {message.text}"))
    seed(owner)
    pages = {"dashboard-light": "/", "bookmarks": "/bookmarks", "tasks": "/tasks",
             "notes": "/notes", "files": "/files", "tags": "/tags", "trash": "/trash",
             "settings": "/settings/profile"}
    headings = {"/": f"Welcome, {OWNER['fullName']}", "/bookmarks": "Bookmarks",
                "/tasks": "Tasks", "/notes": "Notes", "/files": "Files", "/tags": "Tags",
                "/trash": "Trash", "/settings/profile": "Settings"}
    ready = {"/": "[data-stat=task]:not(:text('–'))", "/notes": ".note-list li",
             "/settings/profile": "h1"}
    for name, path in pages.items():
        response = page.goto(path)
        assert response is not None, path
        assert response.status == 200, (path, response.status)
        expect(page.locator("h1").first).to_have_text(headings[path])  # a note has its own
        page.wait_for_selector(ready.get(path, "#list li"))
        if path == "/notes":
            page.locator(".note-list button", has_text="Meeting notes").click()
            expect(page.locator("#preview table")).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert_screenshot(screenshot(page, name))

    owner.api("PATCH", "/auth/profile", {"theme": "dark"})
    meeting = next(n for n in owner.api("GET", "/notes") if n["title"] == "Meeting notes")
    ready[f"/notes#note-{meeting['id']}"] = "#preview table"
    headings[f"/notes#note-{meeting['id']}"] = "Notes"
    for name, path in {"dashboard-dark": "/", "notes-dark": f"/notes#note-{meeting['id']}",
                       "tasks-dark": "/tasks"}.items():
        response = page.goto(path)
        assert response is not None, path
        assert response.status == 200, (path, response.status)
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        expect(page.locator("h1").first).to_have_text(headings[path])  # a note has its own
        page.wait_for_selector(ready.get(path, "#list li"))
        page.wait_for_load_state("networkidle")
        assert_screenshot(screenshot(page, name))
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    assert_screenshot(screenshot(page, "help-dark"))
    assert console_errors == []


# ------------------------------------------------------------------ Content-Security-Policy

#: Runs before any script of a page (Playwright's init scripts are exempt from its policy)
#: and records each violation the page reports.
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


def test_every_page_renders_under_the_strict_policy_with_no_violation(chromium, server):
    errors: list[str] = []
    context, page = _new_page(chromium, server, DESKTOP, errors)
    context.add_init_script(CSP_RECORDER)
    reported: list[str] = []
    page.on("console", lambda message: "Content Security Policy" in message.text
            and reported.append(f"{page.url}: {message.text}"))
    violations: list[str] = []

    def visit(path: str, ready: str = "h1") -> None:
        response = page.goto(path)
        assert response is not None, path
        assert response.status == 200, (path, response.status)
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert "unsafe-inline" not in policy, path
        assert response.headers.get("x-frame-options") == "DENY", path
        page.wait_for_selector(ready)
        page.wait_for_load_state("networkidle")
        violations.extend(f"{path}: {v}" for v in page.evaluate("window.__cspViolations"))

    visit("/setup")  # the first run, signed out
    server.token, _ = server.actions.register_owner()
    visit("/login")
    seed(server)
    sign_in(page, server.url)
    for path, ready in [("/", "[data-stat=task]:not(:text('–'))"), ("/bookmarks", "#list li"),
                        ("/tasks", "#list li"), ("/notes", ".note-list li"),
                        ("/files", "#list li"), ("/tags", "#list li"), ("/trash", "#list li"),
                        ("/search?q=notes", "#search-results .item"),
                        ("/settings/profile", "h1"), ("/settings/security", "h1"),
                        ("/settings/data", "h1"), ("/settings/backups", "h1"),
                        ("/admin/users", "h1"), ("/api/docs", "h1"),
                        ("/messages", ".conversation"), ("/challenges", "#open .empty")]:
        visit(path, ready)
        if path == "/notes":  # rendered Markdown
            page.locator(".note-list button", has_text="Meeting notes").click()
            expect(page.locator("#preview table")).to_be_visible()
        if path == "/files":  # an image preview
            page.locator("#list li", has_text="trackeep-logo.png").first.click()
            page.wait_for_load_state("networkidle")
        violations.extend(f"{path}: {v}" for v in page.evaluate("window.__cspViolations"))
    wait_live(page)  # the live socket connects under connect-src 'self'
    context.close()
    assert violations == []
    assert reported == []
    assert errors == []
