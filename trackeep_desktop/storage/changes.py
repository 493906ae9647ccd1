"""The change pipeline: what a write records, and who hears of it.

Every domain write records what it changed with :func:`record_change`, inside its
transaction. The :class:`Pipeline` of the application (a field of its state, built in one
place: :func:`trackeep_desktop.realtime.pipeline.build_pipeline`) then does the rest:

* its **in-transaction** subscribers see each change at once, inside the write's
  transaction: the search index lives in the same database, so keeping it in step there
  means it can never disagree with the data (a subscriber that raises aborts the write); the
  changed users' content versions (:mod:`trackeep_desktop.storage.versions`) are bumped
  there too, once per user just before the commit;
* after the transaction **commits**, the changes of that transaction are dispatched once,
  together, as a :class:`ChangeSet` to the **after-commit** subscribers: cached answers are
  made stale, change events are published, blobs no row names any more are deleted. Nothing
  is dispatched for a transaction that rolls back. An after-commit subscriber never fails
  the write (it is committed): errors are logged.

Change events need the item as the API renders it: each item type has one renderer in the
pipeline, and the dispatch renders every changed item once (one query per type, not per
item). A view that answers with the item it changed reads that rendering back with
:func:`rendered` instead of rendering it again.

The pipeline that hears a write is the *active* one of the current context (a request, a
job, a CLI command): :func:`activate` / :func:`use_pipeline`. A write with no active
pipeline raises: a write nobody indexes would leave the search index behind the data.

Actions are the change events' own vocabulary: ``created``, ``updated``, ``deleted``
(moved to the trash), ``restored`` and ``purged`` (recorded before the row is deleted, so it
can still be read); domains may add their own (``finished`` for an import).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from trackeep_desktop.storage.db import database

log = logging.getLogger(__name__)

ACTIONS = ("created", "updated", "deleted", "restored", "purged")


@dataclasses.dataclass(frozen=True)
class Change:
    """One thing a write changed.

    ``event`` says whether the user's windows hear of it as a change event: the cascades of a
    write (the subtasks trashed with their task, the items of a renamed tag) update the index
    and the caches but are not announced one by one. ``payload``, when given, is sent as the
    event's item instead of the rendered ``item`` (aggregates such as an emptied trash).
    """

    user_id: int
    item_type: str
    action: str
    item: Any = None
    item_id: int | None = None
    event: bool = True
    payload: dict | None = None

    @property
    def id(self) -> int | None:
        """The changed item's id."""
        if self.item_id is not None:
            return self.item_id
        return getattr(self.item, "id", None)


#: ``render(user_id, items) -> [dict]``: the API's JSON of several items of one type.
Renderer = Callable[[int, list], list[dict]]


class ChangeSet:
    """The changes of one committed transaction, with their renderings."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.changes: list[Change] = []
        self._rendered: dict[tuple[str, int], dict] = {}

    def users(self) -> set[int]:
        """Every user whose data changed."""
        return {change.user_id for change in self.changes}

    def events(self) -> list[Change]:
        """The changes announced as change events, in order."""
        return [change for change in self.changes if change.event]

    def render_events(self) -> None:
        """Render the items of every announced change, one call per user and type."""
        wanted: dict[tuple[int, str], dict[int, Any]] = {}
        for change in self.events():
            item_id = change.id
            if (change.payload is None and change.item is not None and item_id is not None
                    and change.action != "purged"
                    and change.item_type in self.pipeline.renderers
                    and (change.item_type, item_id) not in self._rendered):
                wanted.setdefault((change.user_id, change.item_type), {})[item_id] = change.item
        for (user_id, item_type), found in wanted.items():
            rendered = self.pipeline.renderers[item_type](user_id, list(found.values()))
            for item_id, out in zip(found, rendered, strict=True):
                self._rendered[(item_type, item_id)] = out

    def payload_of(self, change: Change) -> dict | None:
        """What a change event carries as its item (None for a purge)."""
        if change.payload is not None:
            return change.payload
        item_id = change.id
        if change.action == "purged" or item_id is None:
            return None
        return self._rendered.get((change.item_type, item_id))

    def rendered(self, item_type: str, item_id: int) -> dict | None:
        """The rendering of an item made for this change set's events, if any."""
        return self._rendered.get((item_type, item_id))


class Pipeline:
    """One application's subscribers and renderers (see the module docstring)."""

    def __init__(self):
        #: ``hook(change)``, inside the write's transaction.
        self.in_transaction: list[Callable[[Change], None]] = []
        #: ``hook(change_set)``, once per committed transaction.
        self.after_commit: list[Callable[[ChangeSet], None]] = []
        #: item type -> :data:`Renderer`.
        self.renderers: dict[str, Renderer] = {}

    def dispatch(self, change_set: ChangeSet) -> None:
        """Run the after-commit subscribers; never raises."""
        try:
            change_set.render_events()
        except Exception:
            log.exception("could not render the changed items for their change events")
        for hook in list(self.after_commit):
            try:
                hook(change_set)
            except Exception:
                log.exception("an after-commit step failed: %r", hook)
        _last_dispatch.set(change_set)

    def announce(self, user_id: int, item_type: str, action: str, payload: dict) -> None:
        """Dispatch one change that no transaction wrote (the end of an import)."""
        change_set = ChangeSet(self)
        change_set.changes.append(Change(user_id, item_type, action, payload=payload))
        self.dispatch(change_set)


_active: contextvars.ContextVar[Pipeline | None] = contextvars.ContextVar(
    "trackeep_pipeline", default=None)
_last_dispatch: contextvars.ContextVar[ChangeSet | None] = contextvars.ContextVar(
    "trackeep_last_dispatch", default=None)
_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("trackeep_quiet", default=False)
_pending = threading.local()


def active_pipeline() -> Pipeline | None:
    """The pipeline that hears this context's writes."""
    return _active.get()


def activate(pipeline: Pipeline) -> contextvars.Token:
    """Make ``pipeline`` hear this context's writes (until :func:`deactivate`)."""
    _last_dispatch.set(None)
    return _active.set(pipeline)


def deactivate(token: contextvars.Token) -> None:
    """Undo an :func:`activate`."""
    _active.reset(token)


@contextlib.contextmanager
def use_pipeline(pipeline: Pipeline) -> Iterator[Pipeline]:
    """``with use_pipeline(p):`` writes inside are heard by ``p``."""
    token = activate(pipeline)
    try:
        yield pipeline
    finally:
        deactivate(token)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Changes recorded inside are indexed and invalidate caches, but are not announced one by
    one (an import of 10,000 bookmarks announces its end, not each bookmark)."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def record_change(user_id: int, item_type: str, action: str, item: Any = None, *,
                  item_id: int | None = None, event: bool = True,
                  payload: dict | None = None) -> Change:
    """Record a change from inside the write's transaction (see the module docstring)."""
    pipeline = _active.get()
    if pipeline is None:
        raise RuntimeError("a write with no active change pipeline: activate the "
                           "application's pipeline (changes.use_pipeline)")
    change = Change(int(user_id), item_type, action, item, item_id,
                    event and not _quiet.get(), payload)
    for hook in list(pipeline.in_transaction):
        hook(change)
    db = database.obj
    if db is None or db.transaction_depth() == 0:
        change_set = ChangeSet(pipeline)
        change_set.changes.append(change)
        pipeline.dispatch(change_set)
        return change
    outer = db._state.transactions[0]
    pending = getattr(_pending, "state", None)
    if pending is None or pending[0] is not outer or pending[1].pipeline is not pipeline:
        change_set = ChangeSet(pipeline)
        pending = (outer, change_set)
        _pending.state = pending

        def dispatch(pending=pending) -> None:
            if getattr(_pending, "state", None) is pending:
                _pending.state = None
            pending[1].pipeline.dispatch(pending[1])

        db.after_commit(dispatch)
    pending[1].changes.append(change)
    return change


def rendered(item_type: str, item_id: int) -> dict | None:
    """The rendering of an item made by the last dispatch in this context (None when it was
    not announced or not rendered): views answer with it instead of rendering again."""
    last = _last_dispatch.get()
    return last.rendered(item_type, item_id) if last is not None else None
