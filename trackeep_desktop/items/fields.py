"""Field values: parsing times, flags, choices and URLs, and the field tables of bookmarks,
tasks and notes that validate input and describe it in the OpenAPI schema."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from trackeep_desktop.storage.models import MAX_ID

from .types import (
    DESCRIPTION_MAX,
    NOTE_MAX,
    TAGS_PER_ITEM_MAX,
    TASK_PRIORITIES,
    TASK_STATUSES,
    TITLE_MAX,
    URL_MAX,
    InvalidInput,
    NotFound,
)


def parse_time(value: Any, field: str) -> float | None:
    """An ISO 8601 date or date-time (``2024-05-01``, ``2024-05-01T10:00:00Z``) as epoch
    seconds; naive times are UTC. ``None`` and ``""`` give None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be an ISO 8601 date or date-time.", field)
    text = value.strip()
    try:
        if len(text) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        else:
            moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 date or date-time, like "
                           "2024-05-01 or 2024-05-01T10:00:00Z.", field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _text(max_length: int, *, required: bool = False, strip: bool = True):
    def parse(value: Any, field: str) -> str:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidInput(f"{field} must be a string.", field)
        if strip:
            value = value.strip()
        if required and not value:
            raise InvalidInput(f"{field} must not be empty.", field, "required")
        if len(value) > max_length:
            raise InvalidInput(f"{field} may have at most {max_length} characters.", field,
                               "too_long")
        return value

    return parse


def _flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false.", field)
    return value


def _choice(choices: tuple[str, ...]):
    def parse(value: Any, field: str) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise InvalidInput(f"{field} is one of {', '.join(choices)}.", field, "not_allowed")
        return value.strip().lower()

    return parse


def _progress(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        raise InvalidInput(f"{field} must be a whole number from 0 to 100.", field)
    if not 0 <= value <= 100:
        raise InvalidInput(f"{field} must be from 0 to 100.", field, "out_of_range")
    return int(value)


def _optional_id(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{field} must be the id of an item, or null.", field)
    if value > MAX_ID:
        raise InvalidInput(f"{field} must be the id of an item, or null: ids are at most "
                           f"{MAX_ID}.", field, "out_of_range")
    return value


def normalize_url(url: Any, field: str = "url") -> str:
    """Validate and normalize a bookmark URL: ``http``/``https`` only (a bare
    ``example.com/x`` gets ``https://``), scheme and host lower-cased, the default port and
    a bare trailing ``#`` dropped, an empty path made ``/``. The fragment is kept: in a
    single-page app (``https://app.example.com/#/inbox/42``) it names the page, and some
    links carry their key in it. Raises :class:`InvalidInput`."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("Enter the URL of the page.", field, "required")
    url = url.strip()
    if len(url) > URL_MAX:
        raise InvalidInput(f"A URL may have at most {URL_MAX} characters.", field, "too_long")
    if any(c.isspace() or ord(c) < 32 or 127 <= ord(c) <= 159 for c in url):  # C0, DEL, C1
        raise InvalidInput("A URL cannot contain spaces or control characters.", field)
    if "://" not in url and re.match(r"^[\w.-]+\.[a-zA-Z]{2,}(?::\d+)?(?:[/?#]|$)", url):
        url = "https://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("This is not a valid URL.", field) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidInput("Only http and https URLs can be saved.", field, "not_allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise InvalidInput("The URL has no host name.", field)
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    netloc = host
    if parts.username is not None:
        credentials = parts.username + (f":{parts.password}" if parts.password is not None
                                        else "")
        netloc = f"{credentials}@{host}"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    # urlunsplit leaves out an empty fragment, so "https://a.example/x#" saves as ".../x"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


def url_hash(url: str) -> str:
    """The SHA-256 of a normalized URL (indexed, to find duplicates)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class Field:
    """One writable field of an item: its parser and its JSON schema (for OpenAPI)."""

    name: str
    parse: Callable[[Any, str], Any]
    schema: dict


BOOKMARK_FIELDS = {f.name: f for f in (
    Field("url", normalize_url, {"type": "string", "format": "uri", "maxLength": URL_MAX,
                                 "description": "http or https; normalized"}),
    Field("title", _text(TITLE_MAX), {"type": "string", "maxLength": TITLE_MAX}),
    Field("description", _text(DESCRIPTION_MAX), {"type": "string",
                                                   "maxLength": DESCRIPTION_MAX}),
    Field("favicon_url", lambda v, f: "" if v in (None, "") else normalize_url(v, f),
          {"type": "string", "format": "uri"}),
    Field("is_favorite", _flag, {"type": "boolean"}),
    Field("is_read", _flag, {"type": "boolean", "description": "sets or clears read_at"}),
    Field("is_public", _flag, {"type": "boolean"}),
)}

TASK_FIELDS = {f.name: f for f in (
    Field("title", _text(TITLE_MAX, required=True), {"type": "string", "minLength": 1,
                                                      "maxLength": TITLE_MAX}),
    Field("description", _text(DESCRIPTION_MAX), {"type": "string",
                                                   "maxLength": DESCRIPTION_MAX}),
    Field("status", _choice(TASK_STATUSES), {"type": "string", "enum": list(TASK_STATUSES)}),
    Field("priority", _choice(TASK_PRIORITIES), {"type": "string",
                                                 "enum": list(TASK_PRIORITIES)}),
    Field("due_date", parse_time, {"type": "string", "format": "date-time", "nullable": True}),
    Field("progress", _progress, {"type": "integer", "minimum": 0, "maximum": 100}),
    Field("parent_id", _optional_id, {"type": "integer", "nullable": True,
                                      "description": "the parent task (one level only)"}),
)}

NOTE_FIELDS = {f.name: f for f in (
    Field("title", _text(TITLE_MAX, required=True), {"type": "string", "minLength": 1,
                                                      "maxLength": TITLE_MAX}),
    Field("content", _text(NOTE_MAX, strip=False), {"type": "string", "maxLength": NOTE_MAX,
                                                    "description": "Markdown"}),
    Field("is_pinned", _flag, {"type": "boolean"}),
)}

TAGS_SCHEMA = {
    "type": "array", "maxItems": TAGS_PER_ITEM_MAX,
    "description": "replaces the item's tags; names or {name} objects",
    "items": {"oneOf": [{"type": "string"},
                        {"type": "object", "properties": {"name": {"type": "string"}}}]},
}


def input_schema(fields: Mapping[str, Field], required: Iterable[str] = ()) -> dict:
    """The JSON schema of an item's input, from its field table (OpenAPI uses it)."""
    properties = {name: dict(f.schema) for name, f in fields.items()}
    properties["tags"] = TAGS_SCHEMA
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _clean(fields: Mapping[str, Field], data: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInput("The request body must be a JSON object.")
    return {name: field.parse(data[name], name) for name, field in fields.items()
            if name in data}


def _live(model: Any, user_id: int, item_id: Any, label: str):
    """The user's item that is not in the trash, else :class:`NotFound`. ``model`` is an item
    model (see :attr:`ItemType.model`)."""
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise NotFound(f"{label} not found")
    item = model.get_or_none((model.id == item_id) & (model.user == user_id)
                             & model.deleted_at.is_null())
    if item is None:
        raise NotFound(f"{label} not found")
    return item
