"""The leaderboard capability: ranked scores per board, in memory or in Redis sorted sets.

Both order like ZREVRANGE: higher score first, equal scores by member descending. Boards are
named by the caller (``challenge:123:leaderboard``); Redis stores one at ``tk:{board}``.

Boards are derived state: the database is their source of truth. A domain that keeps boards
registers a rebuilder with :class:`LeaderboardRebuilders` when the app is created
(``capabilities.leaderboard_rebuilders.add("challenges", rebuild)``); the rebuilders run when
Redis comes back after an outage and on ``trackeep leaderboards rebuild``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Iterable

from sortedcontainers import SortedList

from trackeep_desktop.capabilities.base import Health, Leaderboard, ping_health
from trackeep_desktop.capabilities.keys import Keyspace
from trackeep_desktop.clock import SystemClock

log = logging.getLogger(__name__)

#: ``rebuild(leaderboard)`` rewrites its boards from the database (``clear`` then
#: ``set_score``) and returns the names of the boards it wrote.
Rebuilder = Callable[[Leaderboard], Iterable[str]]


def check_score(score: float) -> float:
    """The score as a float; NaN is refused (Redis refuses it too)."""
    score = float(score)
    if math.isnan(score):
        raise ValueError("a leaderboard score cannot be NaN")
    return score


class _Board:
    """One board: (score, member) pairs in ascending order plus each member's score."""

    def __init__(self):
        self.ordered = SortedList()
        self.scores: dict[str, float] = {}

    def set(self, member: str, score: float) -> None:
        old = self.scores.get(member)
        if old is not None:
            self.ordered.remove((old, member))
        self.ordered.add((score, member))
        self.scores[member] = score


class MemoryLeaderboard(Leaderboard):
    """Boards in a ``SortedList`` each (O(log N) updates and ranks), under one lock.

    The ascending list read backwards is exactly Redis' ZREVRANGE order.
    """

    backend = "memory"

    def __init__(self, clock=None):
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._boards: dict[str, _Board] = {}

    def set_score(self, board: str, member: str, score: float) -> None:
        """Set a member's score, adding the member if new."""
        score = check_score(score)
        with self._lock:
            self._boards.setdefault(board, _Board()).set(member, score)

    def increment(self, board: str, member: str, delta: float) -> float:
        """Add ``delta`` to the member's score (0 if new) and return the new score."""
        delta = check_score(delta)
        with self._lock:
            state = self._boards.setdefault(board, _Board())
            score = check_score(state.scores.get(member, 0.0) + delta)
            state.set(member, score)
            return score

    def top(self, board: str, n: int, offset: int = 0) -> list[tuple[str, float]]:
        """The best ``n`` members after skipping ``offset``, with their scores."""
        if n <= 0:
            return []
        offset = max(0, offset)
        with self._lock:
            state = self._boards.get(board)
            if state is None:
                return []
            stop = len(state.ordered) - offset
            if stop <= 0:
                return []
            entries = state.ordered.islice(max(0, stop - n), stop, reverse=True)
            return [(member, score) for score, member in entries]

    def rank(self, board: str, member: str) -> int | None:
        """The member's 1-based rank, or None if absent."""
        with self._lock:
            state = self._boards.get(board)
            if state is None or member not in state.scores:
                return None
            score = state.scores[member]
            return len(state.ordered) - state.ordered.index((score, member))

    def score(self, board: str, member: str) -> float | None:
        """The member's score, or None if absent."""
        with self._lock:
            state = self._boards.get(board)
            return None if state is None else state.scores.get(member)

    def remove(self, board: str, member: str) -> bool:
        """Remove a member; True if it was there. An emptied board is dropped."""
        with self._lock:
            state = self._boards.get(board)
            if state is None or member not in state.scores:
                return False
            score = state.scores.pop(member)
            state.ordered.remove((score, member))
            if not state.scores:
                del self._boards[board]
            return True

    def size(self, board: str) -> int:
        """How many members the board has."""
        with self._lock:
            state = self._boards.get(board)
            return 0 if state is None else len(state.scores)

    def clear(self, board: str) -> None:
        """Remove the whole board."""
        with self._lock:
            self._boards.pop(board, None)

    def check(self) -> Health:
        """Always ok: there is nothing to fail."""
        return Health(self.backend, "ok")


class RedisLeaderboard(Leaderboard):
    """One sorted set per board at ``tk:{board}``; every call is one Redis command.

    ``client`` is a ``redis.Redis`` with ``decode_responses=True``. Redis errors propagate.
    """

    backend = "redis"

    def __init__(self, client, keyspace: Keyspace, clock=None):
        self.client = client
        self.keyspace = keyspace
        self.clock = clock or SystemClock()

    def key(self, board: str) -> str:
        """The Redis name of a board: ``tk:{board}``."""
        return self.keyspace.key(board)

    def set_score(self, board: str, member: str, score: float) -> None:
        """Set a member's score (ZADD)."""
        self.client.zadd(self.key(board), {member: check_score(score)})

    def increment(self, board: str, member: str, delta: float) -> float:
        """Add ``delta`` to the member's score (ZINCRBY) and return the new score."""
        return float(self.client.zincrby(self.key(board), check_score(delta), member))

    def top(self, board: str, n: int, offset: int = 0) -> list[tuple[str, float]]:
        """The best ``n`` members after skipping ``offset`` (ZREVRANGE ... WITHSCORES)."""
        if n <= 0:
            return []
        offset = max(0, offset)
        entries = self.client.zrevrange(self.key(board), offset, offset + n - 1, withscores=True)
        return [(member, float(score)) for member, score in entries]

    def rank(self, board: str, member: str) -> int | None:
        """The member's 1-based rank (ZREVRANK + 1), or None if absent."""
        rank = self.client.zrevrank(self.key(board), member)
        return None if rank is None else rank + 1

    def score(self, board: str, member: str) -> float | None:
        """The member's score (ZSCORE), or None if absent."""
        score = self.client.zscore(self.key(board), member)
        return None if score is None else float(score)

    def remove(self, board: str, member: str) -> bool:
        """Remove a member (ZREM); True if it was there."""
        return self.client.zrem(self.key(board), member) == 1

    def size(self, board: str) -> int:
        """How many members the board has (ZCARD)."""
        return int(self.client.zcard(self.key(board)))

    def clear(self, board: str) -> None:
        """Remove the whole board (UNLINK)."""
        self.client.unlink(self.key(board))

    def check(self) -> Health:
        """Ok if Redis answers PING, else ``fallback`` with the error; never raises."""
        return ping_health(self.client, self.backend)


@dataclasses.dataclass
class RebuildReport:
    """What one run of the rebuilders did."""

    #: rebuilder name -> the boards it rewrote
    boards: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: names of the rebuilders that raised (logged with their traceback)
    failed: list[str] = dataclasses.field(default_factory=list)

    @property
    def board_count(self) -> int:
        return sum(len(names) for names in self.boards.values())


class LeaderboardRebuilders:
    """The registry of leaderboard rebuilders of one application.

    A rebuilder opens what it reads itself (``with connection(db)``): it also runs in the
    Redis probe thread, outside any request.
    """

    def __init__(self):
        self._rebuilders: dict[str, Rebuilder] = {}
        self._lock = threading.Lock()

    def add(self, name: str, rebuild: Rebuilder) -> None:
        """Register ``rebuild`` under ``name`` (one per domain; a second add replaces it)."""
        with self._lock:
            self._rebuilders[name] = rebuild

    def names(self) -> list[str]:
        """The registered rebuilders, in registration order."""
        with self._lock:
            return list(self._rebuilders)

    def run(self, leaderboard: Leaderboard) -> RebuildReport:
        """Run every rebuilder against ``leaderboard``.

        A rebuilder that fails on a bug is logged and reported, and the others still run;
        a Redis outage (or :class:`~.fallback.CapabilityUnavailable`) stops the run and
        propagates, so a recovery waits for the next probe.
        """
        from trackeep_desktop.capabilities.fallback import OUTAGE_ERRORS, CapabilityUnavailable

        with self._lock:
            rebuilders = list(self._rebuilders.items())
        report = RebuildReport()
        for name, rebuild in rebuilders:
            try:
                report.boards[name] = list(rebuild(leaderboard))
            except CapabilityUnavailable:
                raise
            except OUTAGE_ERRORS:
                raise
            except Exception:
                log.exception("the %s leaderboard rebuilder failed", name)
                report.failed.append(name)
        return report
