"""Key names: ``{prefix}:{resource}:{id}:{attribute}`` (docs/architecture.md)."""

import hashlib


class Keyspace:
    """Builds Redis key names under one configurable prefix (default ``tk``)."""

    def __init__(self, prefix: str = "tk"):
        if not prefix or any(c in prefix for c in " *?[]"):
            raise ValueError(f"invalid key prefix {prefix!r}")
        self.prefix = prefix

    def key(self, *parts: object) -> str:
        """``key("session", "abc")`` -> ``"tk:session:abc"``."""
        return ":".join([self.prefix, *(str(p) for p in parts)])

    def strip(self, key: str) -> str:
        """The inverse of :meth:`key` for one joined name: ``tk:messages:1`` -> ``messages:1``."""
        head = self.prefix + ":"
        return key[len(head):] if key.startswith(head) else key


def short_hash(text: str, length: int = 12) -> str:
    """A short stable hash for long key parts (search queries and the like)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]
