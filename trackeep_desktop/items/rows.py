"""Plain rows for the hot read paths: the SQL written out, each row a dict by column name.

Through peewee a page of 50 bookmarks cost about 5 ms, of which SQLite's own work was a few
percent: the rest was building some 70 SQL nodes a query and a model per row (issue 17). The
lists, the item reads, the trash and the tags of a page therefore write their statements as
text with ``?`` placeholders and read rows as dicts, which the one serializer of each type
(``bookmark_json``, ``task_json``, ``note_json``, ``file_json``) renders. A model (what a
write returns) goes through the same serializer by :func:`model_row`, so an item's JSON is
made in one place whichever way it was read.

A row holds the database's values: SQLite gives booleans as 0 and 1, which the serializers
turn into ``bool``; every other column type comes back as the models would give it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from trackeep_desktop.storage.db import database, is_postgres


def sql(text: str) -> str:
    """A statement with ``?`` placeholders as the database wants them (``%s`` on PostgreSQL).
    The statements of these read paths hold no ``?`` or ``%`` of their own (their values are
    always parameters)."""
    return text.replace("?", "%s") if is_postgres() else text


def marks(n: int) -> str:
    """``?, ?, ?`` for ``n`` parameters."""
    return ", ".join(["?"] * n)


def select(text: str, params: Sequence[Any], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Run a SELECT of exactly ``columns`` and return its rows as dicts."""
    cursor = database.execute_sql(sql(text), params)
    return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]


def scalar(text: str, params: Sequence[Any]) -> Any:
    """The first column of the first row (None when there is no row)."""
    row = database.execute_sql(sql(text), params).fetchone()
    return None if row is None else row[0]


def model_row(model: Any, columns: Iterable[str]) -> dict[str, Any]:
    """A model's values as a row of these columns (``user_id``, ``parent_id``... are the
    models' own foreign-key accessors)."""
    return {column: getattr(model, column) for column in columns}
