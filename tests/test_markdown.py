"""Notes render Markdown to HTML in which nothing a note says can run."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from trackeep_desktop.items.markdown import ALLOWED_TAGS, render_markdown, sanitize_html


class Inspector(HTMLParser):
    """Collects every tag and attribute of rendered HTML."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


def assert_inert(html: str) -> Inspector:
    """No script, no handler, no dangerous URL, no unexpected tag; links are noopener."""
    inspector = Inspector()
    inspector.feed(html)
    for tag, attrs in inspector.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (name, html)
            assert name in {"href", "src", "alt", "title", "rel", "style", "start"}, (name, html)
            if name in ("href", "src"):
                scheme = urlsplit(value.strip()).scheme.lower()
                assert scheme in ("", "http", "https", "mailto"), (value, html)
            if name == "style":
                assert value.replace(" ", "").startswith("text-align:"), (value, html)
        if tag == "a":
            assert set(attrs.get("rel", "").split()) >= {"noopener", "nofollow"}, html
    return inspector


HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](  javascript:alert(1)  )",
    "[x](java\tscript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;&#x61;vascript&#58;alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](javascript:alert(1))",
    '![img](x" onerror="alert(1))',
    "![img](data:image/svg+xml,<svg onload=alert(1)>)",
    "<javascript:alert(1)>",
    "<http://ok.example/?q=\"><script>alert(1)</script>>",
    "[a][ref]\n\n[ref]: javascript:alert(1)",
    '[a](http://x.example "title\\" onmouseover=\\"alert(1)")',
    "**bold <em onclick=alert(1)>x</em>** _it_ `<script>`",
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    "<svg><script>alert(1)</script></svg>",
    "<details open ontoggle=alert(1)>",
    "> quote <img src=x onerror=alert(1)>\n> > nested [l](javascript:x)",
    "| a | b |\n|---|---|\n| <script>x</script> | [l](javascript:x) |",
    "- item\n  - [nested **[link](javascript:alert(1))**](http://ok.example)",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<!-- comment --><script>alert(1)</script>",
    "\u0000<script>alert(1)</script>",
]


@pytest.mark.parametrize("markdown", HOSTILE)
def test_hostile_markdown_renders_inert(markdown):
    html = render_markdown(markdown)
    assert_inert(html)
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<iframe" not in lowered
    assert "<svg" not in lowered
    assert not re.search(r"<[^>]*(href|src)\s*=\s*[\"']?\s*(javascript|vbscript|data):",
                         lowered)


@pytest.mark.parametrize("markdown", [
    "<script>alert(1)</script>",
    "<!-- comment --><script>alert(1)</script>",
    "| a | b |\n|---|---|\n| <script>x</script> | c |",
])
def test_raw_html_shows_as_text(markdown):
    """Raw HTML in a note is displayed, escaped, never interpreted."""
    assert "&lt;script&gt;" in render_markdown(markdown)


HOSTILE_HTML = [
    '<p onclick="x()">a</p><script>alert(1)</script>',
    '<a href="javascript:alert(1)" onmouseover="x">l</a>',
    '<img src="data:image/png;base64,AAAA" onerror="x">',
    '<a href="  JAVASCRIPT:alert(1)">l</a>',
    '<div style="background:url(javascript:x)"><span>t</span></div>',
    '<td style="text-align:left; background-image:url(x)">c</td>',
    '<form action="/x"><input name=a><button formaction="javascript:x">b</button></form>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<a href="http://ok.example" rel="opener" target="_blank">l</a>',
]


@pytest.mark.parametrize("html", HOSTILE_HTML)
def test_the_sanitizer_alone_stops_hostile_html(html):
    """The second layer holds even if the renderer let HTML through."""
    cleaned = sanitize_html(html)
    assert_inert(cleaned)
    assert "javascript" not in cleaned.lower()
    assert "opener" not in cleaned.replace("noopener", "")


def test_ordinary_markdown_keeps_its_formatting():
    html = render_markdown(
        "# Title\n\nSome **bold**, _italic_, ~~gone~~ and `code`.\n\n"
        "- one\n- two\n\n3. three\n\n> quoted\n\n```\nblock\n```\n\n"
        "| left | right |\n|:-----|------:|\n| a | b |\n\n"
        "[site](https://example.com/a?b=1&c=2 \"Example\") <https://auto.example/x> "
        "![logo](/static/icons/trackeep.png) [mail](mailto:me@example.com) [rel](/notes/3)\n\n"
        "Entities: &copy; &amp; 5 &lt; 6\n\n***nested _emphasis_ [link](http://x.example)***")
    inspector = assert_inert(html)
    tags = [tag for tag, _ in inspector.tags]
    for tag in ("h1", "strong", "em", "s", "code", "ul", "ol", "li", "blockquote", "pre",
                "table", "th", "td", "a", "img"):
        assert tag in tags, tag
    hrefs = [attrs["href"] for tag, attrs in inspector.tags if tag == "a"]
    assert hrefs == ["https://example.com/a?b=1&c=2", "https://auto.example/x",
                     "mailto:me@example.com", "/notes/3", "http://x.example"]
    assert ('title="Example"' in html)
    assert ('style="text-align:right"' in html)
    assert ('<ol start="3">' in html)
    assert "© &amp; 5 &lt; 6" in html


def test_empty_content_renders_nothing():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""
