"""Secrets at rest: TOTP secrets are stored sealed (Fernet: AES-128-CBC with HMAC-SHA256)
under a key derived from the application's ``SECRET_KEY`` with HKDF-SHA256.

The keys are a keyring, filled by each app at start-up (:func:`add_key`): a value is sealed
with the newest key and opened with any, so several apps in one process (the tests) and a
rotated ``SECRET_KEY`` listed after the old one keep working. A stored value that is not a
sealed token is a secret from before sealing; it is opened as it is, and sealed at the next
start-up (:func:`trackeep_desktop.accounts.users.seal_stored_totp_secrets`).
"""

from __future__ import annotations

import base64
import threading

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: What every Fernet token starts with (its version byte 0x80, base64).
TOKEN_PREFIX = "gAAAAA"
_INFO = b"trackeep: TOTP secrets at rest"

_lock = threading.Lock()
_keys: list[bytes] = []


class SealingError(Exception):
    """No key to seal with, or a stored value that no key of the ring opens."""


def derive_key(secret_key: str) -> bytes:
    """The Fernet key (urlsafe base64 of 32 bytes) derived from ``secret_key``."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret_key.encode("utf-8"))
    return base64.urlsafe_b64encode(raw)


def add_key(secret_key: str) -> None:
    """Put the key derived from ``secret_key`` first in the ring (sealing uses it)."""
    key = derive_key(secret_key)
    with _lock:
        if key in _keys:
            _keys.remove(key)
        _keys.insert(0, key)


def _ring() -> MultiFernet:
    with _lock:
        if not _keys:
            raise SealingError("no key to seal or open secrets with (no app configured one)")
        return MultiFernet([Fernet(k) for k in _keys])


def is_sealed(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


def seal(plain: str) -> str:
    """``plain`` sealed with the newest key."""
    return _ring().encrypt(plain.encode("utf-8")).decode("ascii")


def open_sealed(stored: str) -> str:
    """The secret in a stored value (a value from before sealing is returned as it is)."""
    if not is_sealed(stored):
        return stored
    try:
        return _ring().decrypt(stored.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SealingError("a stored secret does not open with the SECRET_KEY; was the key "
                           "changed?") from None
