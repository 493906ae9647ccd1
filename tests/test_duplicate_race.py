"""Two simultaneous saves of one URL: the duplicate check and the insert are one step, on
SQLite and PostgreSQL (run with ``--db=postgres``), and asking for a duplicate still works."""

from __future__ import annotations

import threading

from auth_actions import GENEROUS_LIMITS, AuthActions, bearer

from trackeep_desktop.storage.models import Bookmark

THREADS = 8


def save_together(app, token: str, body: dict, query: str = "") -> list[int]:
    barrier = threading.Barrier(THREADS)
    statuses: list[int] = []

    def save():
        client = app.test_client()
        barrier.wait()
        response = client.post(f"/api/v1/bookmarks{query}", json=body, headers=bearer(token))
        statuses.append(response.status_code)

    threads = [threading.Thread(target=save) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_simultaneous_saves_of_one_url_make_one_bookmark(make_app):
    app = make_app(FETCH_METADATA=False, **GENEROUS_LIMITS)
    token, _ = AuthActions(app).register_owner()
    for round_ in range(3):
        url = f"https://example.com/race/{round_}"
        statuses = save_together(app, token, {"url": url})
        assert statuses == [201] + [409] * (THREADS - 1)
        with app.app_context():
            assert Bookmark.select().where(Bookmark.url == url).count() == 1


def test_simultaneous_saves_asking_for_duplicates_all_land(make_app):
    app = make_app(FETCH_METADATA=False, **GENEROUS_LIMITS)
    token, _ = AuthActions(app).register_owner()
    url = "https://example.com/on-purpose"
    assert save_together(app, token, {"url": url}, "?allow_duplicate=true") == [201] * THREADS
    with app.app_context():
        assert Bookmark.select().where(Bookmark.url == url).count() == THREADS
