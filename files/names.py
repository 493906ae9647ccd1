"""TODO names."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from urllib.parse import quote

from trackeep_desktop.models import File

from .store import MAX_NAME_LENGTH, PREVIEW_TEXT_BYTES, BlobStore


def sanitize_name(raw: str | None) -> str:
    """A file name fit for display and for a download header: no folders (``a/../b`` →
    ``b``), no control, bidi-override or zero-width characters, no newlines, whitespace
    collapsed, at most :data:`MAX_NAME_LENGTH` characters (the extension kept); ``file``
    when nothing is left."""
    text = unicodedata.normalize("NFC", str(raw or ""))
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp", "Zs"):
            kept.append(" ")
        elif category in ("Cf", "Cs", "Co", "Cn"):
            continue  # format (bidi overrides, zero-width), surrogates, private, unassigned
        else:
            kept.append(char)
    text = " ".join("".join(kept).split())
    if not text.strip("."):
        return "file"
    if len(text) > MAX_NAME_LENGTH:
        stem, dot, ext = text.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            text = stem[: MAX_NAME_LENGTH - len(ext) - 1].rstrip() + "." + ext
        else:
            text = text[:MAX_NAME_LENGTH].rstrip()
    return text


def content_disposition(disposition: str, name: str) -> str:
    """A ``Content-Disposition`` header value (RFC 6266): an ASCII ``filename`` every client
    understands, and the exact name as ``filename*=UTF-8''...`` (RFC 5987)."""
    if disposition not in ("attachment", "inline"):
        raise ValueError(f"unknown disposition {disposition!r}")
    name = sanitize_name(name)
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    # Quotes, backslashes and percent signs are read differently by different browsers.
    fallback = " ".join(re.sub(r'["\\%\x00-\x1f\x7f]', "_", fallback).split())
    stem, dot, ext = fallback.rpartition(".")
    if not re.search(r"[A-Za-z0-9]", stem if dot else fallback):
        ascii_ext = re.sub(r"[^A-Za-z0-9]", "", ext)[:16] if dot else ""
        fallback = "download" + (f".{ascii_ext}" if ascii_ext else "")
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


_MIME = mimetypes.MimeTypes()  # the standard table only: the same answers on every machine
for _type, _ext in (("text/markdown", ".md"), ("text/yaml", ".yaml"), ("text/yaml", ".yml"),
                    ("application/toml", ".toml"), ("text/plain", ".log"),
                    ("image/avif", ".avif"), ("image/heic", ".heic"), ("image/webp", ".webp"),
                    ("audio/flac", ".flac"), ("audio/ogg", ".opus"),
                    ("video/x-matroska", ".mkv"), ("application/vnd.sqlite3", ".sqlite"),
                    ("application/epub+zip", ".epub"), ("application/java-archive", ".jar"),
                    ("application/vnd.android.package-archive", ".apk"),
                    ("application/vnd.oasis.opendocument.text", ".odt"),
                    ("application/vnd.oasis.opendocument.spreadsheet", ".ods"),
                    ("application/vnd.oasis.opendocument.presentation", ".odp"),
                    *((f"application/vnd.openxmlformats-officedocument.{kind}", ext)
                      for kind, ext in (("wordprocessingml.document", ".docx"),
                                        ("spreadsheetml.sheet", ".xlsx"),
                                        ("presentationml.presentation", ".pptx")))):
    _MIME.add_type(_type, _ext)

_ENCODING_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
                   "xz": "application/x-xz", "br": "application/x-brotli",
                   "compress": "application/x-compress"}

#: Textual types that are not ``text/*``.
TEXT_APPLICATION_TYPES = frozenset({
    "application/json", "application/xml", "application/javascript", "application/toml",
    "application/x-sh", "application/x-yaml", "application/yaml", "application/sql",
    "application/x-python", "application/ld+json", "application/x-ndjson",
})

#: Images a browser may show inline: raster formats that cannot carry script.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp",
                                "image/bmp", "image/vnd.microsoft.icon", "image/avif"})

_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"SQLite format 3\x00", "application/vnd.sqlite3"),
    (0, b"\x00asm", "application/wasm"),
    (257, b"ustar", "application/x-tar"),
]

_ISO_MEDIA_BRANDS = {b"avif": "image/avif", b"avis": "image/avif", b"heic": "image/heic",
                     b"heix": "image/heic", b"mif1": "image/heic", b"qt  ": "video/quicktime",
                     b"M4A ": "audio/mp4", b"M4B ": "audio/mp4"}

# A content type from the name is believed over the sniffed one only within its family:
# a .docx is a zip, an .mkv starts like a .webm, an .m4a like an .mp4.
_FAMILIES = {
    "application/zip": lambda t: t.endswith("+zip") or "openxmlformats" in t
    or "opendocument" in t or t in ("application/java-archive", "application/vnd.android"
                                    ".package-archive", "application/x-zip-compressed"),
    "video/webm": lambda t: t in ("video/x-matroska", "audio/webm", "audio/x-matroska"),
    "audio/ogg": lambda t: t in ("video/ogg", "application/ogg", "audio/opus"),
    "video/mp4": lambda t: t.startswith(("video/", "audio/")),
    "application/gzip": lambda t: t in ("application/x-tar", "application/x-gtar"),
}


def sniff(head: bytes) -> str | None:
    """The type the first bytes of a file prove, or None (text and unknown formats)."""
    for offset, magic, kind in _MAGIC:
        if head[offset: offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}[
            head[8:12]]
    if head[4:8] == b"ftyp":
        return _ISO_MEDIA_BRANDS.get(head[8:12], "video/mp4")
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (
            12, 40, 52, 56, 64, 108, 124):
        return "image/bmp"
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if looks_like_text(head):
        start = _strip_text_prologue(head)
        if re.match(rb"<svg[\s>/]", start, re.IGNORECASE):
            return "image/svg+xml"
        if re.match(rb"<(!doctype\s+html|html[\s>])", start, re.IGNORECASE):
            return "text/html"
    return None


def _strip_text_prologue(head: bytes) -> bytes:
    """Skip a BOM, whitespace, an XML declaration, comments and a non-HTML doctype."""
    text = head.removeprefix(b"\xef\xbb\xbf")
    while True:
        text = text.lstrip()
        match = re.match(rb"<\?xml[^>]*\?>|<!--.*?-->|<!doctype\s+svg[^>]*>", text,
                         re.IGNORECASE | re.DOTALL)
        if not match:
            return text
        text = text[match.end():]


def looks_like_text(head: bytes) -> bool:
    """True if these bytes read as UTF-8 (or UTF-16 with a BOM) text: no NUL bytes, no
    invalid sequences except a character cut at the end."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls <= len(head) // 100


def guess_from_name(name: str) -> str | None:
    """The content type the file name's extension suggests, or None."""
    kind, encoding = _MIME.guess_type(name, strict=False)
    if encoding in _ENCODING_TYPES:
        return _ENCODING_TYPES[encoding]
    return kind


def is_textual(mime_type: str) -> bool:
    """True for ``text/*`` and the textual ``application/*`` types (JSON, XML, ...)."""
    base = mime_type.split(";")[0].strip().lower()
    return base.startswith("text/") or base in TEXT_APPLICATION_TYPES or base.endswith(
        ("+json", "+xml"))


def detect_mime(name: str, head: bytes) -> str:
    """The content type of a file from its name and its first bytes.

    What the bytes prove wins (a PNG named ``x.txt`` is ``image/png``), except where the name
    is more precise within the same family (a ``.docx`` is a zip). A name's claim to be an
    image, audio or video that the bytes do not back is not believed, so nothing is ever
    shown inline on the strength of its name alone.
    """
    by_name = guess_from_name(name)
    sniffed = sniff(head)
    if sniffed:
        family = _FAMILIES.get(sniffed)
        if by_name and family and family(by_name):
            return by_name
        return sniffed
    if looks_like_text(head):
        if by_name and is_textual(by_name) and by_name != "image/svg+xml":
            return by_name
        return "text/plain" if head else (by_name if by_name and not by_name.startswith(
            ("image/", "audio/", "video/")) else "application/octet-stream")
    if by_name and not by_name.startswith(("image/", "audio/", "video/", "text/")) and (
            not is_textual(by_name)):
        return by_name
    return "application/octet-stream"


def file_kind(mime_type: str) -> str:
    """The original API's ``file_type``: image, video, audio, document, archive or other."""
    base = mime_type.split(";")[0].lower()
    if base.startswith("image/"):
        return "image"
    if base.startswith("video/"):
        return "video"
    if base.startswith("audio/"):
        return "audio"
    if base in ("application/zip", "application/gzip", "application/x-7z-compressed",
                "application/vnd.rar", "application/x-tar", "application/x-bzip2",
                "application/x-xz"):
        return "archive"
    if is_textual(base) or base == "application/pdf" or "officedocument" in base or (
            "opendocument" in base) or base in ("application/msword", "application/rtf",
                                                "application/epub+zip"):
        return "document"
    return "other"


def preview_kind(mime_type: str) -> str | None:
    """How a file may be previewed: ``image`` (shown inline as itself), ``text`` (shown as
    ``text/plain``), ``attachment`` (SVG: it can carry script, so it is only downloaded), or
    None (no preview)."""
    base = mime_type.split(";")[0].strip().lower()
    if base == "image/svg+xml":
        return "attachment"
    if base in INLINE_IMAGE_TYPES:
        return "image"
    if is_textual(base):
        return "text"
    return None


def text_preview(store: BlobStore, record: File, limit: int = PREVIEW_TEXT_BYTES
                 ) -> tuple[str, bool]:
    """The first ``limit`` bytes of a file as text (invalid UTF-8 replaced, a character cut
    at the end dropped), and whether the file was longer."""
    with store.open(record.sha256) as blob:
        data = blob.read(limit + 1)
    truncated = len(data) > limit
    data = data[:limit]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace"), truncated
    text = data.decode("utf-8", "replace")
    if truncated and text.endswith("\ufffd"):
        text = text.rstrip("\ufffd")
    return text.removeprefix("\ufeff"), truncated
