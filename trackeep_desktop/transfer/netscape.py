"""Netscape bookmark files, the format Chrome, Firefox and Safari read and write: parse,
import (tags from folders), export."""

from __future__ import annotations

import codecs
import dataclasses
import html
import logging
import math
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

from trackeep_desktop import items
from trackeep_desktop.items import counts
from trackeep_desktop.storage.changes import quiet, record_change
from trackeep_desktop.storage.models import Bookmark, ItemTag

from .archive import ImportReport, InvalidBookmarkFile, Progress, _no_progress, _write_transaction

log = logging.getLogger(__name__)


#: Top-level folders that are the browser's own containers, not the user's: they do not
#: become tags (Chrome, Firefox and Edge mark them; Safari's have fixed names).
ROOT_FOLDER_MARKS = ("personal_toolbar_folder", "unfiled_bookmarks_folder")
ROOT_FOLDER_NAMES = frozenset({"favorites", "favourites", "bookmarks bar", "bookmarks toolbar",
                               "bookmarks menu", "other bookmarks", "mobile bookmarks",
                               "bookmarksbar", "bookmarksmenu"})
_NETSCAPE_DOCTYPE = "doctype netscape-bookmark-file-1"


@dataclasses.dataclass
class NetscapeBookmark:
    """One ``<A HREF>`` of a bookmark file."""

    url: str
    title: str = ""
    description: str = ""
    add_date: float | None = None
    last_modified: float | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


def _epoch(value: str | None) -> float | None:
    """``ADD_DATE`` as epoch seconds (some tools write milli- or microseconds)."""
    if not value:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    while number > 1e11:  # beyond the year 5138 in seconds: ms or µs
        number /= 1000
    return number


def _tag_name(text: str) -> str | None:
    name = " ".join(text.replace(",", " ").split())[: items.TAG_NAME_MAX].strip()
    return name or None


def _distinct_tags(names: list[str]) -> list[str]:
    """Names without repeats (ignoring case), at most the items' limit per item."""
    kept: dict[str, str] = {}
    for name in names:
        kept.setdefault(items.tag_key(name), name)
    return list(kept.values())[: items.TAGS_PER_ITEM_MAX]


class _NetscapeParser(HTMLParser):
    """Reads ``<DL>``/``<DT>``/``<H3>``/``<A>``/``<DD>`` as browsers write them: tags are
    seldom closed, so the state is the stack of open folders and which text is being read."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.bookmarks: list[NetscapeBookmark] = []
        self.doctype = False
        self.structured = False  # saw an <A HREF> right after a <DT> inside a <DL>
        self.folders = 0
        self._stack: list[str | None] = []  # per open <DL>: its folder's tag (None: no tag)
        self._folder: tuple[str, bool] | None = None  # the last </H3>: (name, is_root)
        self._h3: tuple[list[str], bool, bool] | None = None  # (text, marked, top level)
        self._anchor: tuple[NetscapeBookmark, list[str]] | None = None
        self._dd: list[str] | None = None
        self._last: NetscapeBookmark | None = None  # whose <DD> this would be
        self._last_start = ""

    def handle_decl(self, decl: str) -> None:
        if " ".join(decl.lower().split()) == _NETSCAPE_DOCTYPE:
            self.doctype = True

    def _end_description(self) -> None:
        if self._dd is not None and self._last is not None:
            self._last.description = "".join(self._dd).strip()[: items.DESCRIPTION_MAX]
        self._dd = None

    def _end_anchor(self) -> None:
        if self._anchor is not None:
            bookmark, parts = self._anchor
            bookmark.title = " ".join("".join(parts).split())[: items.TITLE_MAX]
            self.bookmarks.append(bookmark)
            self._last = bookmark
            self._anchor = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag in ("dt", "dd", "dl", "h3", "a", "hr", "p"):
            self._end_anchor()  # an <A> left open ends where the next entry starts
            self._end_description()
        if tag == "h3":
            marked = any(mark in attributes for mark in ROOT_FOLDER_MARKS)
            self._h3 = ([], marked, len(self._stack) <= 1)
            self._last = None  # a <DD> after a folder describes the folder
        elif tag == "dl":
            if self._folder is not None:
                name, is_root = self._folder
                self._stack.append(None if is_root else _tag_name(name))
                self._folder = None
            else:
                self._stack.append(None)
        elif tag == "a" and "href" in attributes:
            if self._stack and self._last_start == "dt":
                self.structured = True
            bookmark = NetscapeBookmark(
                url=attributes["href"].strip(), add_date=_epoch(attributes.get("add_date")),
                last_modified=_epoch(attributes.get("last_modified")),
                tags=[name for name in self._stack if name])
            for extra in attributes.get("tags", "").split(","):
                tag_name = _tag_name(extra)
                if tag_name:
                    bookmark.tags.append(tag_name)
            self._anchor = (bookmark, [])
        elif tag == "dd":
            self._dd = []
        self._last_start = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3" and self._h3 is not None:
            parts, marked, top_level = self._h3
            name = " ".join("".join(parts).split())
            self._folder = (name, marked or (top_level and name.lower() in ROOT_FOLDER_NAMES))
            self.folders += 1
            self._h3 = None
        elif tag == "a":
            self._end_anchor()
        elif tag == "dl":
            self._end_anchor()
            self._end_description()
            if self._stack:
                self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._anchor[1].append(data)
        elif self._h3 is not None:
            self._h3[0].append(data)
        elif self._dd is not None:
            self._dd.append(data)

    def close(self) -> None:
        super().close()
        self._end_anchor()
        self._end_description()


def _charset_of(head: bytes) -> str:
    match = re.search(rb"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", head[:4096], re.IGNORECASE)
    if match:
        try:
            return codecs.lookup(match.group(1).decode("ascii")).name
        except LookupError:
            pass
    return "utf-8"


@dataclasses.dataclass
class NetscapeFile:
    """What a bookmark file holds: its bookmarks in file order, and how many folders."""

    bookmarks: list[NetscapeBookmark]
    folders: int


def parse_netscape(stream: IO[bytes], chunk_size: int = 256 * 1024) -> NetscapeFile:
    """Read a Netscape bookmark file (Chrome, Firefox, Edge, Safari exports) from a binary
    stream, a chunk at a time; raises :class:`InvalidBookmarkFile` for anything else."""
    head = stream.read(chunk_size)
    if not head.strip():
        raise InvalidBookmarkFile("The file is empty. Export your bookmarks from the browser "
                                  "as an HTML file and upload that.")
    if b"\x00" in head[:8192]:
        raise InvalidBookmarkFile("This is not a bookmark file: it is not text. Export your "
                                  "bookmarks from the browser as an HTML file.")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    decoder = codecs.getincrementaldecoder(_charset_of(head))(errors="replace")
    parser = _NetscapeParser()
    chunk = head
    while chunk:
        parser.feed(decoder.decode(chunk))
        chunk = stream.read(chunk_size)
    parser.feed(decoder.decode(b"", final=True))
    parser.close()
    if not parser.doctype and not parser.structured:
        raise InvalidBookmarkFile("This is not a bookmark file: it has neither the Netscape "
                                  "bookmark header nor a list of links. Export your bookmarks "
                                  "from the browser as an HTML file.")
    return NetscapeFile(parser.bookmarks, parser.folders)


def import_bookmarks(user_id: int, stream: IO[bytes], *, now: float,
                     progress: Progress | None = None) -> ImportReport:
    """Import a Netscape bookmark file: each new URL becomes a bookmark (through the items
    domain, with its folders and ``TAGS`` as tags and ``ADD_DATE`` as its creation time);
    URLs already saved or repeated in the file count as ``duplicates``, links that are not
    http(s) (``javascript:``, ``place:``...) as ``invalid``. All in one transaction; a file
    that is not a bookmark file raises :class:`InvalidBookmarkFile` and writes nothing."""
    progress = progress or _no_progress
    parsed = parse_netscape(stream)
    total = len(parsed.bookmarks)
    progress("checking", 0, total)
    existing = {row.url_hash for row in Bookmark.select(Bookmark.url_hash).where(
        (Bookmark.user == user_id) & Bookmark.deleted_at.is_null())}
    wanted: list[tuple[str, NetscapeBookmark]] = []
    duplicates = invalid = 0
    for entry in parsed.bookmarks:
        try:
            url = items.normalize_url(entry.url)
        except items.InvalidInput:
            invalid += 1
            continue
        digest = items.url_hash(url)
        if digest in existing:
            duplicates += 1
            continue
        existing.add(digest)
        wanted.append((url, entry))
    progress("checking", total, total)
    imported = 0
    with _write_transaction(), quiet(), counts.batch():
        # Tags are made once and linked in bulk (set_tags per bookmark would look each name
        # up again); the bookmarks that got tags are reported to the change hooks once more
        # so the search index sees them.
        names: dict[str, str] = {}
        for _, entry in wanted:
            entry.tags = _distinct_tags(entry.tags)
            names.update((items.tag_key(n), n) for n in entry.tags if items.tag_key(n)
                         not in names)
        tag_ids = {items.tag_key(t.name): t.id
                   for t in items.get_or_create_tags(user_id, list(names.values()), now=now)}
        links: list[dict[str, Any]] = []
        tagged: list[Bookmark] = []
        for url, entry in wanted:
            data = {"url": url, "title": entry.title, "description": entry.description}
            try:
                bookmark = items.create_bookmark(user_id, data, now=entry.add_date or now,
                                                 allow_duplicate=True)
            except items.InvalidInput:
                invalid += 1
                continue
            if entry.tags:
                links.extend({"tag": tag_ids[items.tag_key(n)], "item_type": "bookmark",
                              "item_id": bookmark.id} for n in entry.tags)
                tagged.append(bookmark)
            imported += 1
            if imported % 100 == 0 or imported == len(wanted):
                progress("saving", imported, len(wanted))
        for start in range(0, len(links), 500):
            ItemTag.insert_many(links[start:start + 500]).execute()
        counts.linked(user_id, "bookmark", True, [link["tag"] for link in links])
        for bookmark in tagged:
            record_change(user_id, "bookmark", "updated", bookmark)
    log.info("user %s imported a bookmark file: %d new, %d duplicates, %d invalid of %d",
             user_id, imported, duplicates, invalid, total)
    return ImportReport({"bookmarks": imported}, duplicates=duplicates, invalid=invalid,
                        total=total)


#: Bookmarks read, rendered and sent per step of an export.
EXPORT_BATCH = 500


def export_bookmarks(user_id: int) -> Iterator[str]:
    """The user's bookmarks (not the trashed ones) as a Netscape bookmark file, in pieces:
    one list, each bookmark with ``ADD_DATE``, ``LAST_MODIFIED``, its tags in ``TAGS`` (as
    Firefox writes them) and its description in ``<DD>``.

    The file is a stream: :data:`EXPORT_BATCH` bookmarks at a time, read by keyset on
    ``(created_at, id)`` (which never change), so neither the database cursor nor the
    program holds more than one batch, however many bookmarks there are."""
    yield ("<!DOCTYPE NETSCAPE-Bookmark-file-1>\n"
           "<!-- This is an automatically generated file.\n"
           "     It will be read and overwritten.\n"
           "     DO NOT EDIT! -->\n"
           '<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=UTF-8">\n'
           "<TITLE>Bookmarks</TITLE>\n<H1>Bookmarks</H1>\n<DL><p>\n")
    columns = (Bookmark.id, Bookmark.url, Bookmark.title, Bookmark.description,
               Bookmark.created_at, Bookmark.updated_at)
    after: tuple[float, int] | None = None
    while True:
        query = (Bookmark.select(*columns)
                 .where((Bookmark.user == user_id) & Bookmark.deleted_at.is_null())
                 .order_by(Bookmark.created_at, Bookmark.id).limit(EXPORT_BATCH))
        if after is not None:
            query = query.where((Bookmark.created_at > after[0])
                                | ((Bookmark.created_at == after[0]) & (Bookmark.id > after[1])))
        rows: list[dict] = list(query.dicts())  # type: ignore[arg-type]  # dicts() rows
        if not rows:
            break
        yield _render_bookmarks(user_id, rows)
        after = (rows[-1]["created_at"], rows[-1]["id"])
        if len(rows) < EXPORT_BATCH:
            break
    yield "</DL><p>\n"


def _render_bookmarks(user_id: int, rows: list[dict]) -> str:
    tags = items.tags_for(user_id, "bookmark", [r["id"] for r in rows])
    out = []
    for row in rows:
        attrs = f' ADD_DATE="{int(row["created_at"])}" LAST_MODIFIED="{int(row["updated_at"])}"'
        names = ",".join(t.name for t in tags[row["id"]])
        if names:
            attrs += f' TAGS="{html.escape(names)}"'
        title = html.escape(row["title"] or row["url"], quote=False)
        out.append(f'    <DT><A HREF="{html.escape(row["url"])}"{attrs}>{title}</A>\n')
        if row["description"]:
            out.append(f'    <DD>{html.escape(row["description"], quote=False)}\n')
    return "".join(out)


def detect_format(path: str | Path) -> str:
    """``archive`` for a ZIP (a full export), else ``netscape`` (a bookmark file)."""
    with open(path, "rb") as fh:
        return "archive" if fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06") else "netscape"
