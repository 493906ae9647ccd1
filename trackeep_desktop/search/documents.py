"""Search documents: the text of each bookmark, task, note and file as the index stores it
(file contents read from the blob store, bounded)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Any

from trackeep_desktop.storage.models import File

from .query import _CONTROL, BODY_MAX_CHARS, FILE_TEXT_BYTES, FILE_TEXT_SEPARATOR, TEXT_EXTENSIONS

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Document:
    """What the index keeps of one item."""

    item_type: str
    item_id: int
    user_id: int
    title: str
    body: str
    tags: str
    created_at: float
    updated_at: float
    is_favorite: bool = False
    is_unread: bool = False
    is_pinned: bool = False
    status: str | None = None
    deleted: bool = False


def clean_text(text: Any, limit: int = BODY_MAX_CHARS) -> str:
    """Text as indexed: a string, control characters made spaces, at most ``limit``."""
    if not text:
        return ""
    return _CONTROL.sub(" ", str(text)[:limit])


class _HTMLText(HTMLParser):
    """The visible text of an HTML page (``script``, ``style`` and the like skipped)."""

    SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skipping += 1
        elif tag == "title" and self._skipping:
            self._skipping -= 1  # keep the page title, inside <head>
            self._title = True

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1
        elif tag == "title" and getattr(self, "_title", False):
            self._title = False
            self._skipping += 1

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The readable text of an HTML document, whitespace collapsed."""
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # malformed markup: keep what was read
        log.debug("could not fully parse an HTML file for the index", exc_info=True)
    return " ".join(" ".join(parser.parts).split())


def is_text_like(name: str, mime_type: str) -> bool:
    """True for files whose content is indexed: textual types and :data:`TEXT_EXTENSIONS`."""
    from trackeep_desktop.files.names import is_textual

    base = (mime_type or "").split(";")[0].strip().lower()
    if base == "image/svg+xml":
        return False
    return is_textual(base) or PurePath(name.lower()).suffix in TEXT_EXTENSIONS


def file_text(record: File, store=None) -> str:
    """The indexed text of a file's content ("" if it is not text-like or not readable)."""
    if store is None or not is_text_like(record.name, record.mime_type):
        return ""
    try:
        with store.open(record.sha256) as blob:
            data = blob.read(FILE_TEXT_BYTES)
    except (OSError, ValueError) as exc:
        log.warning("file %s: its content could not be read for the index: %s", record.id, exc)
        return ""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", "replace")
    else:
        text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    base = record.mime_type.split(";")[0].strip().lower()
    if base in ("text/html", "application/xhtml+xml") or record.name.lower().endswith(
            (".html", ".htm")):
        text = html_to_text(text)
    return text


def document_for(item_type: str, item: Any, tag_names: Iterable[str], *,
                 body: str | None = None, store=None) -> Document:
    """The document of an item. A file's body is its description, then
    :data:`FILE_TEXT_SEPARATOR`, then its text; ``body`` (the text, when already known) saves
    reading the content again."""
    tags = " ".join(tag_names)
    common = dict(item_type=item_type, item_id=item.id, user_id=item.user_id, tags=tags,
                  created_at=item.created_at, updated_at=item.updated_at,
                  deleted=item.deleted_at is not None)
    if item_type == "bookmark":
        return Document(title=clean_text(item.title or item.url, 2000),
                        body=clean_text(f"{item.url}\n{item.description}"),
                        is_favorite=item.is_favorite, is_unread=not item.is_read, **common)
    if item_type == "task":
        return Document(title=clean_text(item.title, 2000), body=clean_text(item.description),
                        status=item.status, **common)
    if item_type == "note":
        return Document(title=clean_text(item.title, 2000), body=clean_text(item.content),
                        is_pinned=item.is_pinned, **common)
    if item_type == "file":
        if body is None:
            body = clean_text(file_text(item, store))
        return Document(title=clean_text(item.name, 2000),
                        body=clean_text(item.description) + FILE_TEXT_SEPARATOR + body, **common)
    raise ValueError(f"not an indexed type: {item_type!r}")
