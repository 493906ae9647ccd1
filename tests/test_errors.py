"""One DomainError family, one handler: every domain refusal answers its kind's status with
``{"error", "field"?, "reason"?, **details}`` (JSON to API clients, a page to browsers)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from auth_actions import GENEROUS_LIMITS, AuthActions

import trackeep_desktop
from trackeep_desktop import accounts, errors, files, items, search, transfer
from trackeep_desktop.capabilities.fallback import CapabilityUnavailable
from trackeep_desktop.storage.models import Bookmark


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def all_domain_errors() -> list[type[errors.DomainError]]:
    """Every DomainError subclass defined anywhere in the package (each module imported)."""
    for module in pkgutil.walk_packages(trackeep_desktop.__path__, "trackeep_desktop."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    classes = {c for c in _subclasses(errors.DomainError)
               if c.__module__.startswith("trackeep_desktop.")}
    return sorted(classes, key=lambda c: f"{c.__module__}.{c.__qualname__}")


DOMAIN_ERRORS = all_domain_errors()

#: The status each domain's refusals answered before the one handler, kept.
EXPECTED_STATUS = {
    items.InvalidInput: 400, items.NotFound: 404, items.Conflict: 409,
    items.DuplicateBookmark: 409,
    files.InvalidInput: 400, files.NotFound: 404, files.TooLarge: 413,
    search.QuerySyntaxError: 400, search.InvalidInput: 400, search.NotFound: 404,
    search.Conflict: 409, search.SearchTimeout: 503,
    transfer.InvalidArchive: 400, transfer.InvalidBookmarkFile: 400,
    transfer.AccountNotEmpty: 409,
    accounts.InvalidInput: 400, accounts.AlreadyExists: 409, accounts.NotAllowed: 403,
    CapabilityUnavailable: 503,
}


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_every_domain_error_of_the_package_is_found():
    assert set(EXPECTED_STATUS) <= set(DOMAIN_ERRORS)


@pytest.mark.parametrize("cls", DOMAIN_ERRORS, ids=_name)
def test_every_domain_error_maps_to_an_error_status(cls):
    assert isinstance(cls.status, int)
    assert 400 <= cls.status < 600
    assert any(issubclass(cls, kind) for kind in errors.KINDS) or cls.__subclasses__(), (
        f"{_name(cls)} is neither one of the kinds nor a domain's base of them")
    if cls in EXPECTED_STATUS:
        assert cls.status == EXPECTED_STATUS[cls]


def _from_flask(value) -> bool:
    name = getattr(value, "__name__", "") if inspect.ismodule(value) else getattr(
        value, "__module__", None) or ""
    return name.split(".")[0] in ("flask", "werkzeug")


@pytest.mark.parametrize("module", sorted(
    {"trackeep_desktop.errors", "trackeep_desktop.accounts.sessions",
     *(c.__module__ for c in DOMAIN_ERRORS)}))
def test_the_modules_defining_domain_errors_do_not_import_flask(module):
    namespace = vars(importlib.import_module(module))
    assert not [name for name, value in namespace.items() if _from_flask(value)]


def _make(cls: type[errors.DomainError], existing: Bookmark | None = None):
    """An instance of ``cls`` as a domain would raise it."""
    if issubclass(cls, files.TooLarge):
        return cls(1024)
    if issubclass(cls, items.DuplicateBookmark):
        return cls(existing)
    return cls(f"refused by {cls.__qualname__}")


@pytest.fixture
def raising(make_app):
    """An app with ``/api/v1/test-raise/<name>`` and ``/test-raise/<name>`` raising the
    DomainError named, and one bookmark of the owner (for DuplicateBookmark)."""
    app = make_app(**GENEROUS_LIMITS)
    by_name = {_name(c): c for c in DOMAIN_ERRORS}
    ids = {}

    def view(name: str):
        raise _make(by_name[name], Bookmark.get_by_id(ids["bookmark"]))

    app.add_url_rule("/api/v1/test-raise/<path:name>", "test_raise_api", view)
    app.add_url_rule("/test-raise/<path:name>", "test_raise_page", view)
    actions = AuthActions(app)
    token, _ = actions.register_owner()
    created = actions.api("POST", "/bookmarks", token, json={
        "url": "https://example.com/", "title": "Example", "tags": ["x"]})
    assert created.status_code == 201, created.get_json()
    ids["bookmark"] = created.get_json()["id"]
    return app


@pytest.mark.parametrize("cls", DOMAIN_ERRORS, ids=_name)
def test_an_api_path_raising_each_kind_answers_its_status_with_json(raising, cls):
    response = raising.test_client().get(f"/api/v1/test-raise/{_name(cls)}")
    assert response.status_code == cls.status
    assert response.mimetype == "application/json"
    body = response.get_json()
    expected = _make(cls)  # message, field and reason, without the bookmark
    assert body["error"] == expected.message
    assert body.get("field") == expected.field
    assert body.get("reason") == expected.reason
    if issubclass(cls, files.TooLarge):
        assert body["limit_bytes"] == 1024
    if issubclass(cls, items.DuplicateBookmark):
        assert body["duplicate"]["url"] == "https://example.com/"
        assert body["duplicate"]["tags"][0]["name"] == "x"
    if issubclass(cls, CapabilityUnavailable):
        assert response.headers["Retry-After"] == "5"


def test_a_browser_gets_the_error_page_with_the_status(raising):
    response = raising.test_client().get(f"/test-raise/{_name(accounts.NotAllowed)}",
                                         headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert "refused by NotAllowed" in response.get_data(as_text=True)


def test_the_body_leaves_out_keys_without_a_value():
    assert accounts.InvalidInput("too short", "password").to_json() == {
        "error": "too short", "field": "password"}
    assert items.NotFound().to_json() == {"error": "not found"}
    assert search.QuerySyntaxError("bad").to_json() == {
        "error": "bad", "field": "q", "reason": "invalid_query"}
    assert errors.Unavailable("later", retry_after=3).headers == {"Retry-After": "3"}
