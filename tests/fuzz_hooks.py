"""schemathesis hooks for ``tests/test_fuzz_api.py`` (loaded by the CLI through
``SCHEMATHESIS_HOOKS=fuzz_hooks``; this file is not a test module).

Two jobs:

* Mix the second user's ids in: every third integer id in a path is replaced by one of the
  ids ``FUZZ_FOREIGN_IDS`` lists (a JSON ``{parameter name: [ids]}``), so the owner's fuzzing
  keeps asking for, changing and deleting another user's bookmarks, tasks, notes and tags.
  Admin writes never target the two accounts of the run (``FUZZ_PROTECTED_USERS``): disabling,
  demoting or resetting the owner would end the fuzzing session, and doing it to the second
  user would spoil the check that their items are untouched.
* Keep out the inputs issue 19's other fixes (branch h19input) are about, so this run
  reports everything else: ids of 2**63 or more (a 500 on SQLite), non-ASCII session
  handles; NUL bytes are off through ``--generation-allow-x00 false`` and lone surrogates
  cannot appear under the default utf-8 codec. TODO(issue 19): drop ``_within_h19input``
  and the x00 option once those fixes are merged.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any
from urllib.parse import unquote

import schemathesis

FOREIGN_IDS: dict[str, list[int]] = json.loads(os.environ.get("FUZZ_FOREIGN_IDS", "{}"))
PROTECTED_USERS: set[int] = set(json.loads(os.environ.get("FUZZ_PROTECTED_USERS", "[]")))
#: Ids from 2**63 on are issue 19's "huge ids" class (h19input validates ids at the edge).
ID_CEILING = 2**63 - 1

_turn = itertools.count()


def _within_h19input(value: Any) -> Any:
    """``value`` with every integer of 2**63 or more (or -2**63 or less) brought in range."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -ID_CEILING <= value <= ID_CEILING:
        return value % ID_CEILING
    if isinstance(value, dict):
        return {k: _within_h19input(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_within_h19input(v) for v in value]
    return value


def _h19input_class(value: Any) -> bool:
    """Whether a request carries an input of issue 19's classes fixed on h19input."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -ID_CEILING <= value <= ID_CEILING
    if isinstance(value, str):
        return "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_h19input_class(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_h19input_class(v) for v in value)
    return False


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drop a server error caused by an input of issue 19's classes fixed on h19input, in the
    phases where ``map_case`` does not run (the stateful phase builds its own requests).
    Every other failure, and every failure on other inputs, is kept. TODO(issue 19): remove."""
    if response is None or response.status_code < 500:
        return True
    handle = (case.path_parameters or {}).get("handle")
    if isinstance(handle, str) and not unquote(handle).isascii():
        return False
    return not any(_h19input_class(part) for part in (
        case.path_parameters, case.query, case.body if isinstance(case.body, dict | list | str)
        else None))


@schemathesis.hook
def map_case(context, case):
    """Bring ids in range, mix the second user's ids in, protect the run's two accounts."""
    operation = context.operation
    path = operation.path if operation is not None else ""
    method = operation.method.upper() if operation is not None else "GET"
    if case.path_parameters:
        params = _within_h19input(dict(case.path_parameters))
        for name, value in params.items():
            if isinstance(value, bool) or not isinstance(value, int):
                if name == "handle" and isinstance(value, str) and not unquote(value).isascii():
                    # issue 19: a non-ASCII session handle is a 500 (fixed on h19input)
                    params[name] = unquote(value).encode("ascii", "backslashreplace").decode()
                continue
            foreign = FOREIGN_IDS.get(name)
            if foreign and next(_turn) % 3 == 0:
                params[name] = foreign[value % len(foreign)]
            if (name == "user_id" and path.startswith("/admin/") and method != "GET"
                    and params[name] in PROTECTED_USERS):
                params[name] = params[name] + 1_000_000
        case.path_parameters = params
    if case.query:
        case.query = _within_h19input(case.query)
    if isinstance(case.body, dict | list):
        case.body = _within_h19input(case.body)
    return case
