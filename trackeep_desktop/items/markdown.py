"""Markdown to safe HTML, for notes.

Two layers, so one mistake is not enough for a note to run script:

1. ``markdown-it-py`` renders CommonMark (plus tables and strikethrough) with raw HTML
   *disabled*: ``<script>`` in a note is shown as text, never passed through; its link
   validator already refuses ``javascript:``, ``vbscript:``, ``file:`` and ``data:`` URLs.
2. ``nh3`` (the Rust ``ammonia`` sanitizer) then cleans the HTML against an allow-list:
   only the tags Markdown produces, no event handlers or other attributes beyond ``href``,
   ``src``, ``alt``, ``title`` (and ``text-align`` styles on table cells), only ``http``,
   ``https`` and ``mailto`` URLs (relative ones pass), and every link gets
   ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt

#: Tags the renderer produces; everything else is removed (its text kept).
ALLOWED_TAGS = frozenset({
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "img", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr",
    "ul",
})

#: Attributes allowed per tag (``rel`` on links is set by the sanitizer, never taken).
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}

#: URL schemes allowed in ``href`` and ``src``.
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})

LINK_REL = "noopener noreferrer nofollow"


@functools.lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def sanitize_html(html: str) -> str:
    """Clean an HTML fragment with the allow-lists above (used on the renderer's output)."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel=LINK_REL,
        filter_style_properties={"text-align"},
        strip_comments=True,
    )


def render_markdown(text: str | None) -> str:
    """Render Markdown to sanitized HTML, safe to insert into a page as is."""
    if not text:
        return ""
    return sanitize_html(_renderer().render(text))
