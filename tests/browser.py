"""Helpers for the browser tests: headless Chromium (Debian's ``chromium``) driven by
Playwright, a real threaded server per test (WebSockets included), and user actions.

Playwright's own browser download is not used: the tests launch ``/usr/bin/chromium`` (or
``TRACKEEP_TEST_CHROMIUM``). Without it, or without Playwright, browser tests skip locally
and fail under CI.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from auth_actions import OWNER

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

DESKTOP = {"width": 1280, "height": 820}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str | None:
    """The Chromium binary to drive, or None when there is none."""
    configured = os.environ.get("TRACKEEP_TEST_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium")


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # sticky bars are drawn where the page scrolled
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, base_url: str, login: str = "owner", password: str = OWNER["password"]):
    """Sign in through the login form; waits for the dashboard."""
    page.goto(f"{base_url}/login")
    page.fill("#f-login", login)
    page.fill("#f-password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def wait_live(page) -> None:
    """Wait until the page's Socket.IO connection to /events is up."""
    wait_for_script(page, "window.trackeepSocket && window.trackeepSocket.connected")


def wait_for_script(page, expression: str, timeout: float = 10) -> None:
    """Wait until ``expression`` is truthy in the page. Playwright's ``wait_for_function``
    evaluates a string with ``eval``, which the pages' Content-Security-Policy refuses;
    ``evaluate`` runs through the DevTools protocol, which the policy does not govern."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)
