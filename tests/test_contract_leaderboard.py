"""The leaderboard contract, run against MemoryLeaderboard and RedisLeaderboard."""

from __future__ import annotations

import random
import threading

import pytest

from trackeep_desktop.capabilities.base import Leaderboard
from trackeep_desktop.capabilities.leaderboard import MemoryLeaderboard, RedisLeaderboard
from trackeep_desktop.clock import ManualClock

BOARD = "challenge:123:leaderboard"


@pytest.fixture
def board(backend):
    return backend.make("leaderboard")


def zrevrange_order(scores: dict[str, float]) -> list[tuple[str, float]]:
    """What Redis' ZREVRANGE returns: higher score first, ties by member descending."""
    ranked = sorted(((score, member) for member, score in scores.items()), reverse=True)
    return [(member, score) for score, member in ranked]


def test_both_implementations_implement_the_interface():
    for cls in (MemoryLeaderboard, RedisLeaderboard):
        assert issubclass(cls, Leaderboard)
        assert not cls.__abstractmethods__


def test_top_orders_by_score_then_member_descending(backend, board):
    scores = {"42": 1500, "17": 1200, "89": 980, "23": 750, "alice": 750, "bob": 750, "7": -3}
    for member, score in scores.items():
        board.set_score(BOARD, member, score)
    expected = [
        ("42", 1500.0), ("17", 1200.0), ("89", 980.0),
        ("bob", 750.0), ("alice", 750.0), ("23", 750.0), ("7", -3.0),
    ]
    assert board.top(BOARD, 10) == expected
    assert [board.rank(BOARD, member) for member, _ in expected] == [1, 2, 3, 4, 5, 6, 7]
    if backend.name == "redis":
        key = backend.keyspace.key(BOARD)
        assert backend.client.zrevrange(key, 0, -1, withscores=True) == expected


def test_ties_compare_members_as_redis_does(backend, board):
    members = ["b", "B", "a", "ab", "10", "9", "", "é", "z", "Z0", "✓", "a b"]
    for member in members:
        board.set_score(BOARD, member, 1)
    expected = sorted(members, key=lambda m: m.encode("utf-8"), reverse=True)
    assert [member for member, _ in board.top(BOARD, 100)] == expected
    if backend.name == "redis":
        raw = backend.client.zrevrange(backend.keyspace.key(BOARD), 0, -1)
        assert raw == expected


def test_random_boards_match_redis_order(backend, board):
    rng = random.Random(7)
    scores = {}
    for _ in range(300):
        member = f"user{rng.randrange(1000)}"
        scores[member] = float(rng.randrange(-5, 20)) / 2  # plenty of ties
        board.set_score(BOARD, member, scores[member])
    for _ in range(200):
        member = rng.choice(sorted(scores))
        scores[member] = board.increment(BOARD, member, rng.choice([-1.5, 0.5, 2]))
    for member in rng.sample(sorted(scores), 20):
        assert board.remove(BOARD, member)
        del scores[member]

    expected = zrevrange_order(scores)
    assert board.size(BOARD) == len(scores)
    assert board.top(BOARD, len(scores) + 10) == expected
    for offset in (0, 1, 37, len(expected) - 3):
        assert board.top(BOARD, 25, offset) == expected[offset:offset + 25]
    for position, (member, score) in enumerate(expected, start=1):
        assert board.rank(BOARD, member) == position
        assert board.score(BOARD, member) == score


def test_set_score_replaces_the_score(backend, board):
    board.set_score(BOARD, "42", 10)
    board.set_score(BOARD, "42", 3.5)
    assert board.score(BOARD, "42") == 3.5
    assert board.size(BOARD) == 1
    if backend.name == "redis":
        assert backend.client.zscore(backend.keyspace.key(BOARD), "42") == 3.5


def test_increment_starts_at_zero_and_returns_the_new_score(board):
    assert board.increment(BOARD, "42", 5) == 5.0
    assert board.increment(BOARD, "42", 0.25) == 5.25
    assert board.increment(BOARD, "42", -10) == -4.75
    assert board.score(BOARD, "42") == -4.75
    board.set_score(BOARD, "17", 1)
    assert board.rank(BOARD, "42") == 2
    assert board.increment(BOARD, "42", 6) == 1.25
    assert board.rank(BOARD, "42") == 1


def test_absent_members_have_no_rank_or_score(board):
    assert board.rank(BOARD, "ghost") is None
    assert board.score(BOARD, "ghost") is None
    board.set_score(BOARD, "42", 0)
    assert board.rank(BOARD, "ghost") is None
    assert board.score(BOARD, "ghost") is None
    assert board.score(BOARD, "42") == 0.0
    assert board.rank(BOARD, "42") == 1


def test_remove_and_size(backend, board):
    for member, score in {"a": 3, "b": 2, "c": 1}.items():
        board.set_score(BOARD, member, score)
    assert board.size(BOARD) == 3
    assert board.remove(BOARD, "b") is True
    assert board.remove(BOARD, "b") is False
    assert board.remove("challenge:999:leaderboard", "a") is False
    assert board.size(BOARD) == 2
    assert board.rank(BOARD, "c") == 2
    assert board.top(BOARD, 10) == [("a", 3.0), ("c", 1.0)]
    board.remove(BOARD, "a")
    board.remove(BOARD, "c")
    assert board.size(BOARD) == 0
    assert board.top(BOARD, 10) == []
    if backend.name == "redis":
        assert backend.client.exists(backend.keyspace.key(BOARD)) == 0


def test_top_with_offset_and_edge_cases(board):
    for i in range(10):
        board.set_score(BOARD, f"m{i}", i)
    assert board.top(BOARD, 3) == [("m9", 9.0), ("m8", 8.0), ("m7", 7.0)]
    assert board.top(BOARD, 3, offset=3) == [("m6", 6.0), ("m5", 5.0), ("m4", 4.0)]
    assert board.top(BOARD, 5, offset=8) == [("m1", 1.0), ("m0", 0.0)]
    assert board.top(BOARD, 5, offset=10) == []
    assert board.top(BOARD, 5, offset=50) == []
    assert board.top(BOARD, 0) == []
    assert board.top(BOARD, -1) == []
    assert board.top("challenge:404:leaderboard", 5) == []


def test_boards_are_independent_and_clear_removes_one(backend, board):
    board.set_score(BOARD, "42", 1)
    board.set_score("challenge:7:leaderboard", "42", 9)
    assert board.score(BOARD, "42") == 1.0
    board.clear(BOARD)
    assert board.size(BOARD) == 0
    assert board.top(BOARD, 10) == []
    assert board.score("challenge:7:leaderboard", "42") == 9.0
    board.clear("challenge:404:leaderboard")
    if backend.name == "redis":
        assert backend.client.exists(backend.keyspace.key(BOARD)) == 0
        assert backend.client.exists(backend.keyspace.key("challenge:7:leaderboard")) == 1


def test_nan_scores_are_refused(board):
    with pytest.raises(ValueError, match="cannot be NaN"):
        board.set_score(BOARD, "42", float("nan"))
    with pytest.raises(ValueError, match="cannot be NaN"):
        board.increment(BOARD, "42", float("nan"))
    assert board.size(BOARD) == 0


def test_concurrent_increments_sum_exactly(board):
    members = [f"user{i}" for i in range(5)]
    barrier = threading.Barrier(32)

    def work():
        barrier.wait()
        for i in range(100):
            board.increment(BOARD, members[i % len(members)], 0.5)

    threads = [threading.Thread(target=work) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [board.score(BOARD, member) for member in members] == [320.0] * 5
    assert board.size(BOARD) == 5


def test_concurrent_set_and_remove_keep_the_board_consistent(board):
    barrier = threading.Barrier(8)

    def work(worker):
        rng = random.Random(worker)
        barrier.wait()
        for _ in range(150):
            member = f"m{rng.randrange(20)}"
            if rng.random() < 0.3:
                board.remove(BOARD, member)
            else:
                board.set_score(BOARD, member, rng.randrange(10))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = board.top(BOARD, 100)
    assert len(entries) == board.size(BOARD)
    assert entries == zrevrange_order(dict(entries))
    for position, (member, score) in enumerate(entries, start=1):
        assert board.rank(BOARD, member) == position
        assert board.score(BOARD, member) == score


def test_check_is_ok(backend, board):
    health = board.check()
    assert (health.backend, health.state) == (backend.name, "ok")


# ------------------------------------------------------------------------------- memory only


def test_memory_leaderboard_handles_a_hundred_thousand_members():
    board = MemoryLeaderboard(clock=ManualClock())
    for i in range(100_000):
        board.set_score(BOARD, f"user{i}", i % 1000)
    assert board.size(BOARD) == 100_000
    # 100 members hold each score; ties go to the greater name, compared as strings.
    best = sorted((f"user{i}" for i in range(999, 100_000, 1000)), reverse=True)
    assert best[:3] == ["user99999", "user9999", "user999"]
    assert board.top(BOARD, 3) == [(member, 999.0) for member in best[:3]]
    assert board.rank(BOARD, "user99999") == 1
    assert board.rank(BOARD, "user999") == best.index("user999") + 1
    assert board.rank(BOARD, "user0") == 100_000
    assert board.top(BOARD, 2, offset=99_998) == [("user1000", 0.0), ("user0", 0.0)]
    assert board.increment(BOARD, "user0", 10_000) == 10_000.0
    assert board.rank(BOARD, "user0") == 1
    assert board.remove(BOARD, "user0")
    assert board.size(BOARD) == 99_999


def test_memory_leaderboard_drops_emptied_boards():
    board = MemoryLeaderboard(clock=ManualClock())
    for i in range(100):
        board.set_score(f"challenge:{i}:leaderboard", "42", 1)
        board.remove(f"challenge:{i}:leaderboard", "42")
    assert board._boards == {}
