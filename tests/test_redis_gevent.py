"""Trackeep's Redis client under gevent: the pool's check of a connection before each
command does not go through gevent's hub, and still notices a connection the server closed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent("""
    import sys, time
    from gevent import monkey
    monkey.patch_all()
    import select
    from trackeep_desktop.capabilities import redis_client_from_url
    from trackeep_desktop.capabilities import _QuietReadCheck

    client = redis_client_from_url(sys.argv[1])
    pool = client.connection_pool
    assert issubclass(pool.connection_class, _QuietReadCheck), pool.connection_class
    polls = []
    patched = select.poll
    select.poll = lambda: polls.append(1) or patched()  # gevent's poll, counted
    client.set("tktest:gevent-check", "v")
    for _ in range(50):
        assert client.get("tktest:gevent-check") == "v"
    assert polls == [], f"{len(polls)} checks went through gevent's poll"

    # The server closing an idle connection is noticed: the next command reconnects
    # instead of failing.
    import redis
    killer = redis.Redis.from_url(sys.argv[1])
    assert killer.client_kill_filter(_type="normal", skipme=True) >= 1
    time.sleep(0.1)
    assert client.get("tktest:gevent-check") == "v"
    print("ok")
""")


def test_the_pool_check_skips_gevents_hub_and_still_notices_a_closed_connection(redis_url):
    done = subprocess.run([sys.executable, "-c", CHILD, redis_url], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
