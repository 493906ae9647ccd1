"""Leaderboards are derived state: ``trackeep leaderboards rebuild`` rewrites them with the
rebuilders the domains register at app creation (recovery from an outage runs the same ones,
see ``test_fallback_contract.py``)."""

from __future__ import annotations

import pytest

from trackeep_desktop import cli
from trackeep_desktop.capabilities.leaderboard import LeaderboardRebuilders, MemoryLeaderboard

BOARD = "challenge:7:leaderboard"
#: What the database says (a real domain would query its tables here).
SOURCE = {"ann": 42.0, "bob": 17.0, "cy": 3.0}


def rebuild_challenge_boards(leaderboard) -> list[str]:
    leaderboard.clear(BOARD)
    for member, score in SOURCE.items():
        leaderboard.set_score(BOARD, member, score)
    return [BOARD]


@pytest.fixture
def with_challenge_rebuilder(monkeypatch):
    """Every app created from now on registers the rebuilder, as a domain's init_app would."""
    from trackeep_desktop import app as app_module

    real_create_app = app_module.create_app
    created = []

    def create_app(config=None):
        app = real_create_app(config)
        app.extensions["trackeep"].capabilities.leaderboard_rebuilders.add(
            "challenges", rebuild_challenge_boards)
        created.append(app)
        return app

    monkeypatch.setattr(app_module, "create_app", create_app)
    return created


def run_cli(tmp_path, database_url, *args):
    return cli.main(["leaderboards", "rebuild", "--data-dir", str(tmp_path / "data"),
                     "--database-url", database_url, "--log-level", "WARNING", *args])


def test_rebuild_with_no_challenges_says_it_rebuilt_none(tmp_path, database_url, capsys):
    assert run_cli(tmp_path, database_url) == 0
    out = capsys.readouterr().out
    assert "challenges: 0 board(s)" in out  # the challenges domain registers its rebuilder
    assert "rebuilt 0 board(s) on memory with 1 rebuilder(s)" in out


def test_rebuild_rewrites_redis_boards_from_the_source(tmp_path, database_url, capsys,
                                                       redis_url, redis_client, key_prefix,
                                                       with_challenge_rebuilder,
                                                       monkeypatch):
    monkeypatch.setenv("TRACKEEP_KEY_PREFIX", key_prefix)
    key = f"{key_prefix}:{BOARD}"
    redis_client.zadd(key, {"ann": 1, "stale-member": 99})  # what a lost write left behind
    try:
        code = run_cli(tmp_path, database_url, "--redis-url", redis_url)
        assert code == 0
        assert dict(redis_client.zrevrange(key, 0, -1, withscores=True)) == SOURCE
    finally:
        redis_client.delete(key)
    out = capsys.readouterr().out
    assert f"challenges: 1 board(s): {BOARD}" in out
    assert "rebuilt 1 board(s) on redis with 1 rebuilder(s)" in out
    assert len(with_challenge_rebuilder) == 1


def test_rebuild_fails_clearly_when_redis_does_not_answer(tmp_path, database_url, capsys,
                                                          with_challenge_rebuilder):
    from services import free_port

    code = run_cli(tmp_path, database_url, "--redis-url", f"redis://127.0.0.1:{free_port()}/0")
    assert code == 1
    assert "Redis is unavailable, nothing was rebuilt" in capsys.readouterr().err


def test_a_failing_rebuilder_makes_the_command_fail(tmp_path, database_url, capsys,
                                                    with_challenge_rebuilder, monkeypatch):
    def broken(leaderboard):
        raise RuntimeError("a bug")

    original = LeaderboardRebuilders.run

    def run_with_broken(self, leaderboard):
        self.add("broken", broken)
        return original(self, leaderboard)

    monkeypatch.setattr(LeaderboardRebuilders, "run", run_with_broken)
    assert run_cli(tmp_path, database_url) == 1
    captured = capsys.readouterr()
    assert "the broken rebuilder failed" in captured.err
    assert "rebuilt 1 board(s) on memory with 2 rebuilder(s)" in captured.out


def test_rebuilders_run_in_order_and_report_their_boards():
    rebuilders = LeaderboardRebuilders()
    board = MemoryLeaderboard()
    rebuilders.add("challenges", rebuild_challenge_boards)
    rebuilders.add("nothing", lambda leaderboard: [])
    report = rebuilders.run(board)
    assert rebuilders.names() == ["challenges", "nothing"]
    assert report.boards == {"challenges": [BOARD], "nothing": []}
    assert report.board_count == 1
    assert report.failed == []
    assert board.top(BOARD, 10) == sorted(SOURCE.items(), key=lambda kv: -kv[1])


def test_the_command_is_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "| `trackeep leaderboards rebuild" in readme
