"""Login limits count failures only and cannot be turned against an account's owner: per
account and client tightly, per account across clients loosely, and never against a client
that holds a valid session or a device that signed in before."""

from __future__ import annotations

from auth_actions import OWNER, PASSWORD, AuthActions, bearer

from trackeep_desktop.web.auth import ACCOUNT_WIDE_FACTOR


def login(client, name: str, password: str, remote_addr: str = "127.0.0.1", headers=None):
    """One API login from ``client`` (its cookie jar is the device) at ``remote_addr``."""
    return client.post("/api/v1/auth/login", json={"email": name, "password": password},
                       headers=headers or {}, environ_base={"REMOTE_ADDR": remote_addr})


def test_successful_logins_do_not_count(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    devices = [actions.browser() for _ in range(3)]
    for _ in range(4):
        for device in devices:
            assert login(device, "owner", OWNER["password"]).status_code == 200
    stranger = actions.browser()  # same address, never signed in: all five tries left
    assert [login(stranger, "owner", "wrong").status_code for _ in range(6)] == [401] * 5 + [429]


def test_the_tight_limit_is_per_account_and_client(any_app):
    actions = AuthActions(any_app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    attacker = actions.browser()
    for _ in range(5):
        assert login(attacker, "ann", "wrong", "198.51.100.1").status_code == 401
    assert login(attacker, "ann", PASSWORD, "198.51.100.1").status_code == 429
    assert login(actions.browser(), "ann", PASSWORD, "198.51.100.2").status_code == 200


def test_a_stranger_cannot_lock_out_a_device_that_signed_in_before(any_app):
    actions = AuthActions(any_app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    laptop = actions.browser()
    assert login(laptop, "ann", PASSWORD, "192.0.2.10").status_code == 200
    # Strangers fill every limit: from the laptop's own address, and from everywhere.
    attacker = actions.browser()
    for n in range(5 * ACCOUNT_WIDE_FACTOR):
        login(attacker, "ann", "wrong", f"203.0.{n // 250}.{n % 250 + 1}")
    for _ in range(5):
        login(actions.browser(), "ann", "wrong", "192.0.2.10")
    assert login(actions.browser(), "ann", PASSWORD, "192.0.2.10").status_code == 429
    assert login(actions.browser(), "ann", PASSWORD, "198.51.100.77").status_code == 429
    # The laptop, on the shared address or any other, still gets in.
    assert login(laptop, "ann", PASSWORD, "192.0.2.10").status_code == 200
    assert login(laptop, "ann", PASSWORD, "198.51.100.78").status_code == 200
    # Its own wrong guesses are still limited, on a budget of its own.
    assert [login(laptop, "ann", "wrong").status_code for _ in range(6)] == [401] * 5 + [429]


def test_a_forged_device_cookie_is_not_a_known_device(any_app):
    actions = AuthActions(any_app)
    actions.register_owner()
    attacker = actions.browser()
    attacker.set_cookie("trackeep_device", "eyJkIjoieCIsInUiOlsxXX0.forged")
    assert [login(attacker, "owner", "wrong").status_code for _ in range(6)] == [401] * 5 + [429]


def test_a_client_with_a_valid_session_is_never_locked_out(any_app):
    actions = AuthActions(any_app)
    owner, _ = actions.register_owner()
    for n in range(5 * ACCOUNT_WIDE_FACTOR):
        login(actions.browser(), "owner", "wrong", f"203.0.{n // 250}.{n % 250 + 1}")
    assert login(actions.browser(), "owner", OWNER["password"], "198.51.100.5").status_code == 429
    # The owner's own session (a token here, registered on a client that never signed in).
    answer = login(actions.browser(), "owner", OWNER["password"], "198.51.100.5",
                   headers=bearer(owner))
    assert answer.status_code == 200


def test_distributed_guessing_is_stopped_by_the_account_wide_limit(any_app):
    actions = AuthActions(any_app)
    owner, _ = actions.register_owner()
    actions.create_user(owner, "ann")
    budget = 5 * ACCOUNT_WIDE_FACTOR
    statuses = [login(actions.browser(), "ann", "wrong", f"203.0.{n // 250}.{n % 250 + 1}")
                .status_code for n in range(budget + 1)]
    assert statuses == [401] * budget + [429]
    assert login(actions.browser(), "ann", PASSWORD, "198.51.100.9").status_code == 429
    assert login(actions.browser(), "owner", OWNER["password"], "198.51.100.9").status_code == 200


def test_limits_count_failures_across_two_instances(make_app, redis_url, key_prefix):
    first = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix)
    second = make_app(REDIS_URL=redis_url, KEY_PREFIX=key_prefix)
    a, b = AuthActions(first), AuthActions(second)
    owner, _ = a.register_owner()
    # Successes on either instance spend nothing.
    phone, laptop = first.test_client(), second.test_client()
    for _ in range(6):
        assert login(phone, "owner", OWNER["password"]).status_code == 200
        assert login(laptop, "owner", OWNER["password"]).status_code == 200
    # Failures from one client, alternating instances, share one tight budget.
    attacker_a, attacker_b = first.test_client(), second.test_client()
    statuses = [login(attacker_a if n % 2 else attacker_b, "owner", "wrong",
                      "203.0.113.7").status_code for n in range(6)]
    assert statuses == [401] * 5 + [429]
    # Distributed guessing over both instances meets the account-wide limit...
    for n in range(5 * ACCOUNT_WIDE_FACTOR):
        login((first if n % 2 else second).test_client(), "owner", "wrong",
              f"198.18.{n // 250}.{n % 250 + 1}")
    assert login(first.test_client(), "owner", OWNER["password"], "192.0.2.1").status_code == 429
    assert login(second.test_client(), "owner", OWNER["password"], "192.0.2.1").status_code == 429
    # ...but the devices that signed in before, and the owner's session, get in on both.
    assert login(phone, "owner", OWNER["password"]).status_code == 200
    assert login(laptop, "owner", OWNER["password"]).status_code == 200
    assert b.api("GET", "/auth/me", owner).status_code == 200
    assert login(second.test_client(), "owner", OWNER["password"], "192.0.2.1",
                 headers=bearer(owner)).status_code == 200
