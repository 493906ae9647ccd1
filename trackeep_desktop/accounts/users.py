"""Accounts: users, passwords, two-factor authentication, API keys and device pairing.

The domain of authentication, with no Flask in it: every function takes what it needs (the
user, the time ``now`` in epoch seconds, the settings that matter) and runs the same under a
view, the CLI or a test.

Secrets are never stored as given. Passwords are hashed with argon2id (OWASP's parameters:
19 MiB, 2 passes); API keys, pairing codes and backup codes are long random strings, so one
SHA-256 is the right hash for them (nothing to slow down: they cannot be guessed). Comparisons
of secrets are constant-time (argon2's verify, ``hmac.compare_digest``, or a lookup by hash).
Single-use things (backup codes, pairing codes, TOTP time steps) are consumed with one
conditional ``UPDATE``, so two concurrent requests cannot both use the same one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
import time
import zoneinfo
from collections.abc import Iterable

import peewee
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from trackeep_desktop import errors
from trackeep_desktop.accounts import sealing
from trackeep_desktop.storage.db import database
from trackeep_desktop.storage.models import ApiKey, BackupCode, PairingCode, User

ROLES = ("admin", "user")
THEMES = ("light", "dark", "system")

#: Scopes an API key may hold. ``read`` allows every read (GET); ``*`` allows everything;
#: ``account`` allows managing the account itself (profile, password, sessions, keys, 2FA).
SCOPES = ("read", "bookmarks:write", "tasks:write", "notes:write", "files:write",
          "messages:write", "account", "*")

#: What a key made by device pairing may do: read, and save pages and files.
PAIRING_SCOPES = ("read", "bookmarks:write", "files:write")

API_KEY_PREFIX = "tk_"
BACKUP_CODE_COUNT = 10
TOTP_ISSUER = "Trackeep"
TOTP_STEP = 30

#: API keys record their last use at most this often (seconds): reads must not write.
KEY_LAST_USED_INTERVAL = 60

_USERNAME = re.compile(r"^[a-z0-9_.-]{3,32}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")
# No 0/O, 1/I/L: codes are read off one screen and typed on another.
_PAIRING_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"

# OWASP's argon2id recommendation; about 40 ms per hash on a small machine.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_dummy_hash: str | None = None


# ----------------------------------------------------------------------------------- errors


class AccountError(errors.DomainError):
    """A request the domain refuses; ``str(exc)`` is a message fit to show the user."""


class InvalidInput(AccountError, errors.Invalid):
    """The input is malformed or breaks a rule (a short password, an unknown theme)."""


class AlreadyExists(AccountError, errors.Conflict):
    """The email or username belongs to another account (answered 409)."""


class NotAllowed(AccountError, errors.Forbidden):
    """The action is forbidden in this state (removing the last admin, a wrong password):
    answered 403."""


# -------------------------------------------------------------------------------- utilities


def sha256_hex(text: str) -> str:
    """The SHA-256 of ``text`` as 64 hex digits: how keys and codes are stored."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def iso_time(timestamp: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string (``2024-05-01T10:00:00Z``), or None."""
    if timestamp is None:
        return None
    # time.gmtime is twice as fast as datetime here (every listed item has two times). The
    # whole second is datetime's: it rounds to the microsecond first, then we drop them.
    whole = math.floor(timestamp)
    if timestamp - whole >= 0.9999995:
        whole += 1
    parts = time.gmtime(whole)
    if 1000 <= parts.tm_year <= 9999:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", parts)
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def _random_string(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


# -------------------------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salt and parameters included)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches ``password_hash``; constant-time, never raises.

    With no hash (an unknown account) a dummy hash is still verified, so the answer takes
    as long as for a real account and does not reveal which accounts exist.
    """
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
        password_hash = _dummy_hash
        known = False
    else:
        known = True
    try:
        return _hasher.verify(password_hash, password) and known
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str, min_length: int) -> None:
    """Raise :class:`InvalidInput` unless ``password`` is acceptable."""
    if not isinstance(password, str) or len(password) < min_length:
        raise InvalidInput(f"The password must have at least {min_length} characters.",
                           "password")
    if len(password) > 1024:
        raise InvalidInput("The password may have at most 1024 characters.", "password")


# ------------------------------------------------------------------------------------ users


def normalize_email(email: str) -> str:
    """The stored form of an email address (trimmed, lower-case)."""
    return str(email or "").strip().lower()


def normalize_username(username: str) -> str:
    """The stored form of a username (trimmed, lower-case)."""
    return str(username or "").strip().lower()


def _check_email(email: str) -> str:
    email = normalize_email(email)
    if not _EMAIL.match(email):
        raise InvalidInput("Enter a valid email address.", "email")
    return email


def _check_username(username: str) -> str:
    username = normalize_username(username)
    if not _USERNAME.match(username):
        raise InvalidInput("A username has 3 to 32 letters, digits, dots, dashes or "
                           "underscores.", "username")
    return username


def account_input_errors(email: str, username: str, password: str, *,
                         min_password_length: int) -> dict[str, str]:
    """Every rule a new account's email, username and password break, by field (empty when
    none): a form shows them all at once rather than one per try."""
    found: dict[str, str] = {}
    for check in (lambda: _check_email(email), lambda: _check_username(username),
                  lambda: check_password_rules(password, min_password_length)):
        try:
            check()
        except InvalidInput as exc:
            found[exc.field or "form"] = exc.message
    return found


def _check_unique(email: str | None, username: str | None, except_id: int | None = None):
    if email is not None:
        query = User.select().where(User.email == email)
        if except_id is not None:
            query = query.where(User.id != except_id)
        if query.exists():
            raise AlreadyExists("An account with this email already exists.", "email")
    if username is not None:
        query = User.select().where(User.username == username)
        if except_id is not None:
            query = query.where(User.id != except_id)
        if query.exists():
            raise AlreadyExists("This username is taken.", "username")


OWNER_SETUP_LOCK_ID = 7_146_251_002  # any constant, distinct from the migrations' lock


def count_users() -> int:
    """How many accounts exist (disabled ones included)."""
    return User.select().count()


def create_user(email: str, username: str, password: str, *, now: float,
                min_password_length: int, full_name: str = "", role: str = "user") -> User:
    """Create an account; raise :class:`InvalidInput` or :class:`AlreadyExists`."""
    email = _check_email(email)
    username = _check_username(username)
    check_password_rules(password, min_password_length)
    if role not in ROLES:
        raise InvalidInput(f"A role is one of {', '.join(ROLES)}.", "role")
    full_name = str(full_name or "").strip()[:200]
    password_hash = hash_password(password)
    with database.atomic():
        _check_unique(email, username)
        try:
            return User.create(email=email, username=username, full_name=full_name,
                               password_hash=password_hash, role=role, created_at=now,
                               updated_at=now)
        except peewee.IntegrityError as exc:  # a concurrent create took the name
            raise AlreadyExists("An account with this email or username already exists.") \
                from exc


def create_owner(email: str, username: str, password: str, *, now: float,
                 min_password_length: int, full_name: str = "") -> User:
    """Create the first account, an admin; :class:`NotAllowed` once any account exists.

    Two set-ups racing cannot both win: SQLite transactions take the write lock at BEGIN
    (IMMEDIATE), and on PostgreSQL a transaction-scoped advisory lock serializes them."""
    with database.atomic():
        if isinstance(database.obj, peewee.PostgresqlDatabase):
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (OWNER_SETUP_LOCK_ID,))
        if User.select().exists():
            raise NotAllowed("The owner account already exists.")
        return create_user(email, username, password, now=now, full_name=full_name,
                           min_password_length=min_password_length, role="admin")


def find_user_by_login(login: str) -> User | None:
    """The account whose email or username is ``login`` (any case), or None."""
    login = normalize_email(login)
    if not login:
        return None
    field = User.email if "@" in login else User.username
    return User.get_or_none(field == login)


def get_user(user_id: int) -> User | None:
    """The account with this id, or None. Every authenticated request asks this, so the SQL
    is written out: peewee's query builder costs more than SQLite's lookup itself."""
    query = User.raw(f"SELECT * FROM users WHERE id = {database.param}", int(user_id))
    return next(iter(query), None)


def check_credentials(user: User | None, password: str) -> bool:
    """True if ``user`` exists and ``password`` is its password (takes as long either way).

    Upgrades the stored hash when the hashing parameters have changed.
    """
    if not verify_password(user.password_hash if user else None, password or "") or user is None:
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        User.update(password_hash=hash_password(password)).where(User.id == user.id).execute()
    return True


def record_login(user: User, now: float) -> None:
    """Remember when the user last logged in."""
    User.update(last_login_at=now).where(User.id == user.id).execute()
    user.last_login_at = now


def update_profile(user: User, *, now: float, full_name: str | None = None,
                   email: str | None = None, theme: str | None = None,
                   timezone: str | None = None) -> User:
    """Change the given profile fields (None leaves a field as it is)."""
    changes: dict = {}
    if full_name is not None:
        changes["full_name"] = str(full_name).strip()[:200]
    if email is not None:
        changes["email"] = _check_email(email)
    if theme is not None:
        if theme not in THEMES:
            raise InvalidInput(f"A theme is one of {', '.join(THEMES)}.", "theme")
        changes["theme"] = theme
    if timezone is not None:
        changes["timezone"] = _check_timezone(timezone)
    if not changes:
        return user
    changes["updated_at"] = now
    with database.atomic():
        _check_unique(changes.get("email"), None, except_id=user.id)
        User.update(**changes).where(User.id == user.id).execute()
    for name, value in changes.items():
        setattr(user, name, value)
    return user


def _check_timezone(name: str) -> str:
    name = str(name or "").strip()
    if name == "UTC":
        return name
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Unknown time zone {name!r}; use a name such as Europe/Prague.",
                           "timezone") from None
    return name


def change_password(user: User, current: str, new: str, *, now: float,
                    min_password_length: int) -> None:
    """Set a new password after checking the current one (:class:`InvalidInput` if wrong).

    The caller ends the user's other sessions.
    """
    if not verify_password(user.password_hash, current or ""):
        raise InvalidInput("The current password is incorrect.", "current_password")
    set_password(user, new, now=now, min_password_length=min_password_length)


def set_password(user: User, new: str, *, now: float, min_password_length: int) -> None:
    """Set a new password without asking for the old one (an admin's reset)."""
    check_password_rules(new, min_password_length)
    user.password_hash = hash_password(new)
    user.updated_at = now
    User.update(password_hash=user.password_hash, updated_at=now).where(
        User.id == user.id).execute()


def list_users() -> list[User]:
    """Every account, oldest first."""
    return list(User.select().order_by(User.id))


def _lock_admins() -> None:
    """Within a transaction, lock the admin rows (PostgreSQL) so two concurrent demotions
    cannot both see the other admin; SQLite serializes writers by itself."""
    if getattr(database.obj, "for_update", False):
        list(User.select(User.id).where(User.role == "admin").for_update())


def _other_active_admins(user: User) -> int:
    return (User.select()
            .where(User.role == "admin", User.is_active == True,  # noqa: E712
                   User.id != user.id)
            .count())


def set_role(user: User, role: str, *, now: float) -> User:
    """Make ``user`` an admin or a user; the last active admin cannot stop being one."""
    if role not in ROLES:
        raise InvalidInput(f"A role is one of {', '.join(ROLES)}.", "role")
    with database.atomic():
        _lock_admins()
        if user.role == "admin" and role != "admin" and user.is_active \
                and _other_active_admins(user) == 0:
            raise NotAllowed("This is the last admin: make another user an admin first.")
        User.update(role=role, updated_at=now).where(User.id == user.id).execute()
    user.role = role
    return user


def set_active(user: User, active: bool, *, now: float) -> User:
    """Enable or disable an account; the last active admin cannot be disabled.

    The caller ends the sessions of a disabled account (its API keys stop working at once).
    """
    with database.atomic():
        _lock_admins()
        if not active and user.role == "admin" and user.is_active \
                and _other_active_admins(user) == 0:
            raise NotAllowed("This is the last admin: it cannot be disabled.")
        User.update(is_active=bool(active), updated_at=now).where(User.id == user.id).execute()
    user.is_active = bool(active)
    return user


def user_to_json(user: User) -> dict:
    """The user as the API shows it (the original contract); never a hash or a secret.
    Names are in both spellings the original clients read (``fullName`` and ``full_name``,
    ``createdAt`` and ``created_at``, ``updatedAt`` and ``updated_at``)."""
    return {
        "id": user.id,
        "email": user.email,
        "username": user.username,
        "fullName": user.full_name,
        "full_name": user.full_name,
        "role": user.role,
        "theme": user.theme,
        "timezone": user.timezone,
        "createdAt": iso_time(user.created_at),
        "created_at": iso_time(user.created_at),
        "updatedAt": iso_time(user.updated_at),
        "updated_at": iso_time(user.updated_at),
        "totpEnabled": user.totp_enabled,
    }


def user_to_admin_json(user: User) -> dict:
    """:func:`user_to_json` plus what an admin needs to manage the account."""
    return {**user_to_json(user), "isActive": user.is_active,
            "lastLoginAt": iso_time(user.last_login_at)}


# ----------------------------------------------------------------------------- two-factor


def _normalize_code(code: str) -> str:
    return re.sub(r"[\s-]", "", str(code or "")).lower()


def _match_totp(secret: str, code: str, now: float) -> int | None:
    """The time step (within one step of ``now``) whose TOTP is ``code``, or None."""
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_STEP)
    current = int(now // TOTP_STEP)
    found = None
    for counter in (current - 1, current, current + 1):  # tolerate 30 s of clock drift
        if hmac.compare_digest(totp.generate_otp(counter), code):
            found = counter
    return found


def begin_totp_enrolment(user: User) -> tuple[str, str]:
    """Start TOTP enrolment: a new secret kept as pending until confirmed by a code.

    Returns ``(secret, otpauth_uri)`` for the one-time display (a QR code of the URI).
    """
    if user.totp_enabled:
        raise NotAllowed("Two-factor authentication is already on; turn it off first.")
    secret = pyotp.random_base32()
    sealed = sealing.seal(secret)
    User.update(totp_pending_secret=sealed).where(User.id == user.id).execute()
    user.totp_pending_secret = sealed
    return secret, totp_uri(user, secret)


def totp_uri(user: User, secret: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=TOTP_STEP).provisioning_uri(
        name=user.email, issuer_name=TOTP_ISSUER)


def confirm_totp_enrolment(user: User, code: str, *, now: float) -> list[str]:
    """Turn TOTP on if ``code`` matches the pending secret; return ten new backup codes."""
    sealed = user.totp_pending_secret
    if user.totp_enabled:
        raise NotAllowed("Two-factor authentication is already on.")
    if not sealed:
        raise NotAllowed("Start the two-factor set-up first.")
    secret = sealing.open_sealed(sealed)
    counter = _match_totp(secret, _normalize_code(code), now)
    if counter is None:
        raise InvalidInput("That code is not right; check the time on your device and try "
                           "again.", "code")
    stored = sealing.seal(secret)
    with database.atomic():
        User.update(totp_secret=stored, totp_pending_secret=None, totp_last_counter=counter,
                    updated_at=now).where(User.id == user.id).execute()
        codes = _replace_backup_codes(user)
    user.totp_secret, user.totp_pending_secret, user.totp_last_counter = stored, None, counter
    return codes


def _replace_backup_codes(user: User) -> list[str]:
    codes = [_random_string(_BACKUP_ALPHABET, 10) for _ in range(BACKUP_CODE_COUNT)]
    BackupCode.delete().where(BackupCode.user == user.id).execute()
    BackupCode.insert_many([{"user": user.id, "code_hash": sha256_hex(c)} for c in codes]).execute()
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def verify_second_factor(user: User, code: str, *, now: float) -> str | None:
    """Check a TOTP code or a backup code, consuming it; return ``"totp"``, ``"backup"`` or
    None. A TOTP code is accepted once (its time step cannot be replayed); a backup code
    works once."""
    if user.totp_secret is None:  # two-factor is not enabled
        return None
    code = _normalize_code(code)
    counter = _match_totp(sealing.open_sealed(user.totp_secret), code, now)
    if counter is not None:
        accepted = (User.update(totp_last_counter=counter)
                    .where(User.id == user.id,
                           User.totp_last_counter.is_null() | (User.totp_last_counter < counter))
                    .execute())
        if accepted:
            user.totp_last_counter = counter
            return "totp"
        return None
    if len(code) == 10:
        used = (BackupCode.update(used_at=now)
                .where(BackupCode.user == user.id, BackupCode.code_hash == sha256_hex(code),
                       BackupCode.used_at.is_null())
                .execute())
        if used:
            return "backup"
    return None


def backup_codes_left(user: User) -> int:
    """How many unused backup codes the user has."""
    return (BackupCode.select()
            .where(BackupCode.user == user.id, BackupCode.used_at.is_null())
            .count())


def regenerate_backup_codes(user: User, code: str, *, now: float) -> list[str]:
    """Replace the backup codes after checking a current second factor."""
    if not user.totp_enabled:
        raise NotAllowed("Two-factor authentication is off.")
    if verify_second_factor(user, code, now=now) is None:
        raise InvalidInput("That code is not right.", "code")
    with database.atomic():
        return _replace_backup_codes(user)


def disable_totp(user: User, password: str, code: str, *, now: float) -> None:
    """Turn TOTP off; needs the password and a current code (or a backup code)."""
    if not user.totp_enabled:
        raise NotAllowed("Two-factor authentication is already off.")
    if not verify_password(user.password_hash, password or ""):
        raise InvalidInput("The password is incorrect.", "password")
    if verify_second_factor(user, code, now=now) is None:
        raise InvalidInput("That code is not right.", "code")
    turn_off_totp(user, now=now)


def seal_stored_totp_secrets() -> int:
    """Seal every TOTP secret still stored in clear (from before sealing, or written by a
    tool); returns how many. Run at start-up, with the app's key in the ring."""
    sealed = 0
    with database.atomic():
        for row in User.select(User.id, User.totp_secret, User.totp_pending_secret).where(
                User.totp_secret.is_null(False) | User.totp_pending_secret.is_null(False)):
            changes = {}
            for field in (User.totp_secret, User.totp_pending_secret):
                value = getattr(row, field.name)
                if value is not None and not sealing.is_sealed(value):
                    changes[field] = sealing.seal(value)
            if changes:
                User.update(changes).where(User.id == row.id).execute()
                sealed += 1
    return sealed


def turn_off_totp(user: User, *, now: float) -> None:
    """Turn TOTP off and drop the backup codes, with no check (:func:`disable_totp` checks;
    ``trackeep user reset-password --disable-2fa`` is for a lost authenticator)."""
    with database.atomic():
        User.update(totp_secret=None, totp_pending_secret=None, totp_last_counter=None,
                    updated_at=now).where(User.id == user.id).execute()
        BackupCode.delete().where(BackupCode.user == user.id).execute()
    user.totp_secret = user.totp_pending_secret = user.totp_last_counter = None


# --------------------------------------------------------------------------------- API keys


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, de-duplicated in order; :class:`InvalidInput` for an unknown one."""
    out: list[str] = []
    for scope in scopes:
        scope = str(scope).strip()
        if scope not in SCOPES:
            raise InvalidInput(f"Unknown scope {scope!r}; scopes are {', '.join(SCOPES)}.",
                               "scopes")
        if scope not in out:
            out.append(scope)
    if not out:
        raise InvalidInput("Choose at least one scope.", "scopes")
    return out


def scopes_allow(scopes: Iterable[str], needed: str, safe_method: bool) -> bool:
    """True if a key with ``scopes`` may act under scope ``needed``.

    ``*`` allows everything; ``read`` allows any read (a GET) whatever scope it is under.
    """
    scopes = set(scopes)
    return "*" in scopes or needed in scopes or (safe_method and "read" in scopes)


def create_api_key(user: User, name: str, scopes: Iterable[str], *, now: float,
                   expires_at: float | None = None) -> tuple[ApiKey, str]:
    """Make a key; returns ``(record, key)``. The key is shown once and never stored."""
    name = str(name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("Give the key a name of 1 to 100 characters.", "name")
    scopes = check_scopes(scopes)
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("The expiry must be in the future.", "expires_at")
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey.create(user=user.id, name=name, key_hash=sha256_hex(raw), prefix=raw[:11],
                           scopes=" ".join(scopes), created_at=now, expires_at=expires_at)
    return record, raw


def check_api_key(raw: str, now: float) -> tuple[ApiKey | None, str | None]:
    """``(record, None)`` for a live key (with ``.user`` loaded), else ``(None, why)``:
    ``"expired"`` past its expiry, ``"invalid"`` for a key not known (never issued, or
    revoked: a revoked key's row is deleted) or whose account is disabled."""
    if not isinstance(raw, str) or not raw.startswith(API_KEY_PREFIX) or len(raw) > 128:
        return None, "invalid"
    record = (ApiKey.select(ApiKey, User).join(User)
              .where(ApiKey.key_hash == sha256_hex(raw)).first())
    if record is None or not record.user.is_active:
        return None, "invalid"
    if record.expires_at is not None and record.expires_at <= now:
        return None, "expired"
    return record, None


def find_api_key(raw: str, now: float) -> ApiKey | None:
    """The live key for ``raw`` (not expired, its user active), with ``.user`` loaded."""
    return check_api_key(raw, now)[0]


def touch_api_key(record: ApiKey, now: float) -> None:
    """Record a use of the key, writing at most once per :data:`KEY_LAST_USED_INTERVAL`."""
    if record.last_used_at is not None and now - record.last_used_at < KEY_LAST_USED_INTERVAL:
        return
    ApiKey.update(last_used_at=now).where(ApiKey.id == record.id).execute()
    record.last_used_at = now


def key_scopes(record: ApiKey | PairingCode) -> list[str]:
    """The scopes of a key or pairing code, as a list."""
    return record.scopes.split()


def list_api_keys(user: User) -> list[ApiKey]:
    """The user's keys, newest first."""
    return list(ApiKey.select().where(ApiKey.user == user.id)
                .order_by(ApiKey.created_at.desc(), ApiKey.id.desc()))


def revoke_all_api_keys(user: User) -> int:
    """Delete every API key of the user (paired devices hold keys too) and every pairing code
    not yet redeemed; returns how many keys went. A password change offers it."""
    with database.atomic():
        PairingCode.delete().where(PairingCode.user == user.id).execute()
        return ApiKey.delete().where(ApiKey.user == user.id).execute()


def revoke_api_key(user: User, key_id: int) -> bool:
    """Delete one of the user's keys; False if the user has no key with this id."""
    return ApiKey.delete().where(ApiKey.id == key_id, ApiKey.user == user.id).execute() > 0


def api_key_to_json(record: ApiKey) -> dict:
    """A key as the API lists it: never the key itself, only its first characters."""
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "scopes": key_scopes(record),
        "createdAt": iso_time(record.created_at),
        "expiresAt": iso_time(record.expires_at),
        "lastUsedAt": iso_time(record.last_used_at),
    }


# ---------------------------------------------------------------------------------- pairing


def normalize_pairing_code(code: str) -> str:
    """What the user typed, as stored: upper-case, without spaces or dashes."""
    return re.sub(r"[\s-]", "", str(code or "")).upper()


def create_pairing_code(user: User, *, now: float, ttl: float,
                        scopes: Iterable[str] = PAIRING_SCOPES) -> str:
    """A fresh 8-character one-time code (``ABCD-EFGH``), valid ``ttl`` seconds.

    Earlier unused codes of the user stop working: one code is on display at a time.
    """
    scopes = check_scopes(scopes)
    code = _random_string(_PAIRING_ALPHABET, 8)
    with database.atomic():
        PairingCode.delete().where(PairingCode.user == user.id,
                                   PairingCode.used_at.is_null()).execute()
        PairingCode.delete().where(PairingCode.expires_at <= now).execute()
        PairingCode.create(user=user.id, code_hash=sha256_hex(code), scopes=" ".join(scopes),
                           created_at=now, expires_at=now + ttl)
    return f"{code[:4]}-{code[4:]}"


def redeem_pairing_code(code: str, device_name: str, *, now: float) -> tuple[ApiKey, str] | None:
    """Exchange a live code for a new API key named after the device; None if the code is
    unknown, used or expired. A code works once, even under concurrent attempts."""
    code = normalize_pairing_code(code)
    if not re.fullmatch(f"[{_PAIRING_ALPHABET}]{{8}}", code):
        return None
    device_name = str(device_name or "").strip()[:80] or "Paired device"
    with database.atomic():
        record = (PairingCode.select(PairingCode, User).join(User)
                  .where(PairingCode.code_hash == sha256_hex(code)).first())
        if record is None or record.expires_at <= now or not record.user.is_active:
            return None
        claimed = (PairingCode.update(used_at=now)
                   .where(PairingCode.id == record.id, PairingCode.used_at.is_null())
                   .execute())
        if not claimed:
            return None
        return create_api_key(record.user, device_name, key_scopes(record), now=now)


# --------------------------------------------------------------------------------- sessions


def session_handle(session_id: str) -> str:
    """A public name for a session: lists show it and revocation takes it, so the session
    id (the bearer secret) never appears in a response."""
    return sha256_hex(session_id)[:16]


def describe_user_agent(user_agent: str) -> str:
    """A short human name for a client: ``Firefox on Linux``, or the agent's first word."""
    ua = user_agent or ""
    browser = next((name for token, name in (
        ("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
        ("Safari/", "Safari"), ("Trackeep", "Trackeep app"), ("python-requests", "Python"),
        ("curl/", "curl")) if token in ua), None)
    system = next((name for token, name in (
        ("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Windows", "Windows"),
        ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux")) if token in ua), None)
    if browser and system:
        return f"{browser} on {system}"
    name = browser or system
    if name:
        return name
    return ua.split(" ")[0][:40] or "Unknown device"
