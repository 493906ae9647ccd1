"""Every implementation has every public method of its interface, with the same signature,
and the factory chooses implementations by URL alone."""

import inspect

import pytest

from trackeep_desktop.capabilities import build_capabilities
from trackeep_desktop.capabilities.base import INTERFACES
from trackeep_desktop.capabilities.durable import DatabaseCounterBackup, DatabaseSessionBackup
from trackeep_desktop.capabilities.fallback import (
    FallbackCache,
    FallbackCounters,
    FallbackLeaderboard,
    FallbackPubSub,
    FallbackRateLimiter,
    FallbackSessionStore,
)
from trackeep_desktop.storage.db import ConfigurationError

from conftest import CAPABILITY_CLASSES, implementation

FALLBACKS = {
    "sessions": FallbackSessionStore,
    "cache": FallbackCache,
    "rate_limiter": FallbackRateLimiter,
    "leaderboard": FallbackLeaderboard,
    "counters": FallbackCounters,
    "pubsub": FallbackPubSub,
}


def public_methods(cls):
    return {name: member for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")}


def test_every_capability_has_both_implementations():
    assert set(CAPABILITY_CLASSES) == set(INTERFACES) == set(FALLBACKS)


@pytest.mark.parametrize("kind", ["Memory", "Redis", "Fallback"])
@pytest.mark.parametrize("capability", sorted(INTERFACES))
def test_implementation_has_every_method_of_its_interface(capability, kind):
    interface = INTERFACES[capability]
    cls = FALLBACKS[capability] if kind == "Fallback" else implementation(capability, kind)
    assert issubclass(cls, interface)
    assert not inspect.isabstract(cls), f"{cls.__name__} leaves {cls.__abstractmethods__}"
    methods = public_methods(cls)
    for name, method in public_methods(interface).items():
        assert name in methods, f"{cls.__name__} lacks {name}"
        expected = list(inspect.signature(method).parameters)
        actual = list(inspect.signature(methods[name]).parameters)
        assert actual[: len(expected)] == expected, f"{cls.__name__}.{name}{actual}"


def test_no_url_builds_memory_implementations():
    caps = build_capabilities(None)
    try:
        assert caps.backend == "memory"
        for name in INTERFACES:
            assert type(getattr(caps, name)).__name__.startswith("Memory")
    finally:
        caps.close()


def test_redis_url_builds_redis_implementations_behind_fallbacks(redis_url, database, key_prefix):
    caps = build_capabilities(redis_url, key_prefix=key_prefix,
                              session_backup=DatabaseSessionBackup(database),
                              counter_backup=DatabaseCounterBackup(database))
    try:
        assert caps.backend == "redis"
        for name in INTERFACES:
            wrapper = getattr(caps, name)
            assert isinstance(wrapper, FALLBACKS[name])
            assert type(wrapper.primary).__name__.startswith("Redis")
            assert wrapper.check().state == "ok"
    finally:
        caps.close()


@pytest.mark.parametrize("url", ["http://localhost:6379", "memcached://x", "redis-ish://x"])
def test_other_urls_are_configuration_errors(url):
    with pytest.raises(ConfigurationError, match="unsupported Redis URL"):
        build_capabilities(url)
