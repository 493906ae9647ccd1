"""The one family of refusals every domain raises, and the one body they answer with.

A domain refuses a request by raising a :class:`DomainError` of the right kind; each domain
re-parents its own names on these (``items.InvalidInput`` is an :class:`Invalid`,
``files.TooLarge`` a :class:`TooLarge`, ...). The kind decides the HTTP status; the web layer
(:mod:`trackeep_desktop.web.errors`) has one handler for the whole family, so views just call
the domain. This module does not import Flask: the CLI and the tests catch the same classes.

Every API answers a refusal with one body shape::

    {"error": message, "field"?: name, "reason"?: code, **details}

``error`` is always there and fit to show the user; ``field`` names the input at fault when
there is one; ``reason`` is a short machine code (``required``, ``too_long``, ``duplicate``,
``invalid_query``, ...) when the domain gives one; ``details`` are extra keys of the kind or
the domain (``limit_bytes`` for a too-large upload, ``duplicate`` for the bookmark already
saved). Keys without a value are left out.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request a domain refuses; ``message`` is fit to show the user.

    ``field`` is the input at fault, ``reason`` a short machine code, and ``details`` extra
    keys of the answer. Subclasses may give class-level defaults for ``field`` and ``reason``;
    ``status`` is the HTTP status the kind answers with."""

    status: int = 400
    field: str | None = None
    reason: str | None = None

    def __init__(self, message: str, field: str | None = None, reason: str | None = None,
                 **details: Any):
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field
        if reason is not None:
            self.reason = reason
        self._details = details

    @property
    def details(self) -> dict[str, Any]:
        """Extra keys of the answer (JSON values)."""
        return dict(self._details)

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the refusal asks for (``Retry-After`` for :class:`Unavailable`)."""
        return {}

    def to_json(self) -> dict[str, Any]:
        """The error body: ``{"error", "field"?, "reason"?, **details}``."""
        body: dict[str, Any] = {"error": self.message}
        if self.field:
            body["field"] = self.field
        if self.reason:
            body["reason"] = self.reason
        body.update(self.details)
        return body


class Invalid(DomainError):
    """The input is malformed or breaks a rule (answered 400)."""

    status = 400


class Forbidden(DomainError):
    """The action is not allowed in this state or for this user (answered 403)."""

    status = 403


class NotFound(DomainError):
    """No such thing for this user (answered 404); other users' things are not found either."""

    status = 404


class Conflict(DomainError):
    """The change clashes with the current state: a name taken, a duplicate (answered 409)."""

    status = 409


class TooLarge(DomainError):
    """The input is bigger than a limit (answered 413)."""

    status = 413


class Unavailable(DomainError):
    """The domain cannot answer now (answered 503); ``retry_after`` seconds, when given, go
    into a ``Retry-After`` header."""

    status = 503
    retry_after: int | None = None

    def __init__(self, message: str, field: str | None = None, reason: str | None = None,
                 *, retry_after: int | None = None, **details: Any):
        super().__init__(message, field, reason, **details)
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


#: The kinds, most specific first: what a handler or a test walks.
KINDS: tuple[type[DomainError], ...] = (Invalid, Forbidden, NotFound, Conflict, TooLarge,
                                        Unavailable)
