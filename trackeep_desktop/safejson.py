"""Decoding JSON from outside (request bodies, an import archive's manifest) so that what is
decoded can be stored on every database.

:func:`loads` refuses, as :class:`UnsafeJson` (a ``ValueError``):

- nesting deeper than ``max_depth`` (64): Python's decoder, and anything that walks the
  result recursively, would otherwise raise ``RecursionError`` on a body a thousand levels deep;
- lone surrogates (``"\\ud800"``): they decode to a ``str`` no database driver can encode;
- NUL characters (``"\\u0000"``) in strings and keys: PostgreSQL refuses them in text while
  SQLite stores them, so they are refused everywhere, the same way.

Flask-free: the web side answers :class:`UnsafeJson` with a 400 naming ``field``, the importer
with an invalid-archive message.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64

#: A NUL or a surrogate code point: neither can be stored as text on every database.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class UnsafeJson(ValueError):
    """JSON that decodes but cannot be stored as it is; ``field`` is the path of the value
    (``tags[0]``, ``title``) or None for the document itself."""

    def __init__(self, message: str, field: str | None = None, reason: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason


def unstorable_text(text: str) -> str | None:
    """Why ``text`` cannot be stored (``"nul"``, ``"surrogate"``), or None when it can."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    return "nul" if match.group() == "\x00" else "surrogate"


def text_problem(text: str, field: str | None) -> UnsafeJson | None:
    """The refusal for a string that cannot be stored, or None."""
    why = unstorable_text(text)
    if why is None:
        return None
    where = field or "the document"
    if why == "nul":
        return UnsafeJson(f"{where} contains a NUL character (\\u0000), which is not allowed.",
                          field, "nul_character")
    return UnsafeJson(f"{where} contains invalid Unicode (a lone surrogate).", field,
                      "invalid_unicode")


def _path(parent: str | None, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent or ''}[{key}]"
    return f"{parent}.{key}" if parent else key


def check(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`UnsafeJson` if decoded JSON nests deeper than ``max_depth`` or holds a
    string (or key) with a NUL or a lone surrogate. Iterative: no recursion to overflow."""
    stack: list[tuple[Any, str | None, int]] = [(value, None, 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node, path)
            if problem is not None:
                raise problem
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            raise UnsafeJson(f"The JSON is nested more than {max_depth} levels deep.", None,
                             "too_deep")
        if isinstance(node, dict):
            for key, child in node.items():
                child_path = _path(path, key)
                problem = text_problem(key, child_path)
                if problem is not None:
                    raise problem
                stack.append((child, child_path, depth + 1))
        else:
            stack.extend((child, _path(path, i), depth + 1) for i, child in enumerate(node))


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises ``ValueError`` for anything bad: ``json.JSONDecodeError``
    or ``UnicodeDecodeError`` for what is not JSON, :class:`UnsafeJson` for the rest."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise UnsafeJson(f"The JSON is nested more than {max_depth} levels deep.", None,
                         "too_deep") from None
    check(value, max_depth)
    return value
