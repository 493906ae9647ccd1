"""Saved searches: named queries of one user."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import peewee

from trackeep_desktop.accounts.users import iso_time
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import SavedSearch

from .query import SAVED_NAME_MAX, Conflict, InvalidInput, NotFound, QuerySyntaxError, parse_query


def _saved_name(value: Any) -> str:
    if not isinstance(value, str) or not " ".join(value.split()):
        raise InvalidInput("Give the saved search a name.", "name")
    name = " ".join(value.split())
    if len(name) > SAVED_NAME_MAX:
        raise InvalidInput(f"A name may have at most {SAVED_NAME_MAX} characters.", "name")
    return name


def _saved_query(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Enter the query to save.", "query")
    try:
        parsed = parse_query(value)
    except QuerySyntaxError as exc:
        raise InvalidInput(exc.message, "query") from None
    if parsed.is_empty:
        raise InvalidInput("The query has nothing to search for.", "query")
    return value.strip()


def list_saved_searches(user_id: int) -> list[SavedSearch]:
    """The user's saved searches by name."""
    return list(SavedSearch.select().where(SavedSearch.user == user_id)
                .order_by(SavedSearch.name_key, SavedSearch.id))


def get_saved_search(user_id: int, saved_id: Any) -> SavedSearch:
    """The user's saved search, else :class:`NotFound`."""
    if isinstance(saved_id, bool) or not isinstance(saved_id, int):
        raise NotFound("saved search not found")
    saved = SavedSearch.get_or_none((SavedSearch.id == saved_id) & (SavedSearch.user == user_id))
    if saved is None:
        raise NotFound("saved search not found")
    return saved


def create_saved_search(user_id: int, data: Mapping[str, Any], *, now: float) -> SavedSearch:
    """Save ``{name, query}``; the query must parse; names are unique per user (any case),
    and so are queries: the same search (as parsed, so ``a  b`` is ``a b``) is saved once."""
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    name, query = _saved_name(data.get("name")), _saved_query(data.get("query"))
    _check_not_saved_yet(user_id, query)
    try:
        with database.atomic():
            return SavedSearch.create(user=user_id, name=name, name_key=name.casefold(),
                                      query=query, created_at=now, updated_at=now)
    except peewee.IntegrityError:
        raise Conflict("You already have a saved search with this name.", "name") from None


def _check_not_saved_yet(user_id: int, query: str, except_id: int | None = None) -> None:
    canonical = parse_query(query).canonical()
    for saved in list_saved_searches(user_id):
        if saved.id == except_id:
            continue
        try:
            same = parse_query(saved.query).canonical() == canonical
        except QuerySyntaxError:  # saved under an older grammar
            same = False
        if same:
            raise Conflict(f"You already saved this search as “{saved.name}”.", "query")


def update_saved_search(user_id: int, saved_id: int, data: Mapping[str, Any], *,
                        now: float) -> SavedSearch:
    """Rename a saved search and/or change its query (``{name?, query?}``)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    saved = get_saved_search(user_id, saved_id)
    if "name" in data:
        saved.name = _saved_name(data["name"])
        saved.name_key = saved.name.casefold()
    if "query" in data:
        saved.query = _saved_query(data["query"])
        _check_not_saved_yet(user_id, saved.query, except_id=saved.id)
    saved.updated_at = now
    try:
        with database.atomic():
            saved.save()
    except peewee.IntegrityError:
        raise Conflict("You already have a saved search with this name.", "name") from None
    return saved


def delete_saved_search(user_id: int, saved_id: int) -> None:
    """Delete a saved search."""
    get_saved_search(user_id, saved_id).delete_instance()


def saved_search_to_json(saved: SavedSearch) -> dict:
    """A saved search as the API shows it."""
    return {"id": saved.id, "name": saved.name, "query": saved.query,
            "created_at": iso_time(saved.created_at), "updated_at": iso_time(saved.updated_at)}
