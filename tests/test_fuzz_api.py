"""schemathesis over the served ``/api/v1/openapi.json``: a real ``trackeep serve`` on the
test database, fuzzed as its owner with a second user's ids mixed in (issue 19, "In CI from
now on"). Every answer must be no server error, have a status the description declares and a
body that matches its schema; the second user's items must come out untouched.

The CLI runs in a subprocess (its own hypothesis settings, no plugin state in this process)
with a fixed seed and one worker, so a failure replays; its JUnit report and a VCR cassette of
every request land in test-artifacts/fuzz/<database>/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from processes import ServerProcess, clean_environment

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "fuzz"

pytestmark = pytest.mark.slow

#: Cases per operation in the fuzzing phase; the coverage phase adds its own per operation.
MAX_EXAMPLES = 10
MIN_CASES = 1000
SEED = 19
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
#: Operations that would end the fuzzing session itself, or lock its user out of it: logout
#: ends the owner's session, a password change (PUT and POST) ends sessions and changes the
#: login, enabling two-factor makes every later login need a code. Everything else is fuzzed,
#: DELETE /sessions (the others) and /api-keys included: the run's token is a session and
#: survives them; admin writes are kept off the run's two accounts by fuzz_hooks. Deleting
#: your own account would end the run's user (its refusals are tested in the account tests).
EXCLUDED_PATHS = ("/auth/logout", "/auth/password", "/auth/2fa/enable", "/auth/account")
#: An admin's writes on one user (disable, delete, role, reset): the coverage and stateful
#: phases reach the run's two accounts past fuzz_hooks, and would end the second user's
#: session that the test checks afterwards; tests/test_auth_api.py covers these views.
EXCLUDED_PATH_REGEX = r"^/admin/users/\{user_id\}"
PASSWORD = "correct horse battery"


@pytest.fixture
def server(serve):
    """``trackeep serve`` on the test database (conftest's ``serve`` stops it after)."""
    return serve(env_extra={
        # generous limits: the fuzzer is one client sending thousands of requests
        "TRACKEEP_API_RATE_LIMIT": "1000000", "TRACKEEP_UI_RATE_LIMIT": "1000000",
        "TRACKEEP_AUTH_RATE_LIMIT": "1000000", "TRACKEEP_SHARE_RATE_LIMIT": "1000000",
        # fuzzed bookmarks carry any URL: never fetch them
        "TRACKEEP_FETCH_METADATA": "0",
        "TRACKEEP_LOG_LEVEL": "WARNING",
    })


def _call(server: ServerProcess, method: str, path: str, token: str | None = None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = requests.request(method, f"{server.url}/api/v1{path}", headers=headers,
                              timeout=10, **kwargs)
    assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
    return answer.json()


def _seed(server: ServerProcess) -> tuple[str, dict]:
    """The owner's token, and the second user's: ``{id, token, ids: {param: [ids]},
    items: {path: answer}}``. Both users get items, the second user's first, so the small
    ids the fuzzer tries most are the second user's as often as the owner's."""
    owner = _call(server, "POST", "/auth/register", json={
        "email": "owner@example.com", "username": "owner", "password": PASSWORD})
    created = _call(server, "POST", "/admin/users", owner["token"], json={
        "email": "bee@example.com", "username": "bee", "password": PASSWORD})["user"]
    bee = _call(server, "POST", "/auth/login", json={"username": "bee", "password": PASSWORD})
    ids: dict[str, list[int]] = {"bookmark_id": [], "task_id": [], "note_id": [],
                                 "tag_id": [], "item_id": [], "entry_id": []}
    for token, who in ((bee["token"], "bee"), (owner["token"], "owner")):
        for n in range(3):
            tag = _call(server, "POST", "/tags", token, json={"name": f"{who}-tag-{n}"})
            bookmark = _call(server, "POST", "/bookmarks", token, json={
                "url": f"https://example.com/{who}/{n}", "title": f"{who} {n}",
                "tags": [tag["name"]]})
            task = _call(server, "POST", "/tasks", token, json={"title": f"{who} task {n}"})
            note = _call(server, "POST", "/notes", token, json={
                "title": f"{who} note {n}", "content": "*hello*"})
            entry = _call(server, "POST", "/time-entries", token, json={
                "start_time": f"2026-03-0{n + 1}T09:00:00Z",
                "end_time": f"2026-03-0{n + 1}T10:30:00Z", "task_id": task["id"],
                "tags": [tag["name"]]})["time_entry"]
            if who == "bee":
                ids["entry_id"].append(entry["id"])
                ids["tag_id"].append(tag["id"])
                ids["bookmark_id"].append(bookmark["id"])
                ids["task_id"].append(task["id"])
                ids["note_id"].append(note["id"])
                ids["item_id"] += [bookmark["id"], task["id"], note["id"]]
    # one of the second user's items in their trash: restore and purge by id get a target
    _call(server, "DELETE", f"/notes/{ids['note_id'][-1]}", bee["token"])
    return owner["token"], {"id": created["id"], "owner_id": owner["user"]["id"],
                            "token": bee["token"], "ids": ids,
                            "items": _snapshot(server, bee["token"])}


def _snapshot(server: ServerProcess, token: str) -> dict:
    return {path: _call(server, "GET", path, token)
            for path in ("/bookmarks", "/tasks", "/notes", "/tags", "/trash", "/time-entries")}


def test_the_api_survives_schemathesis_with_a_second_users_ids(server, request, tmp_path):
    owner_token, bee = _seed(server)
    out = ARTIFACTS / request.config.getoption("--db")
    out.mkdir(parents=True, exist_ok=True)
    cassette = out / "cassette.yaml"
    cassette.unlink(missing_ok=True)
    env = clean_environment(**{
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
        "FUZZ_FOREIGN_IDS": json.dumps(bee["ids"]),
        "FUZZ_PROTECTED_USERS": json.dumps([bee["owner_id"], bee["id"]]),
        "NO_COLOR": "1",
    })
    exclusions = [arg for path in EXCLUDED_PATHS for arg in ("--exclude-path", path)]
    exclusions += ["--exclude-path-regex", EXCLUDED_PATH_REGEX]
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/api/v1/openapi.json",
         "-H", f"Authorization: Bearer {owner_token}", "--checks", CHECKS,
         "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
         # issue 19: NUL bytes are a 500 on PostgreSQL, fixed on branch h19input; TODO: drop
         # this once it is merged (see fuzz_hooks for the other classes kept out)
         "--generation-allow-x00", "false",
         "--generation-database", "none", "--request-timeout", "20", "--wait-for-schema", "5",
         "--report", "junit,vcr", "--report-dir", str(out),
         "--report-vcr-path", str(cassette), *exclusions],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)  # its cache
    elapsed = time.monotonic() - started
    (out / "schemathesis.txt").write_text(run.stdout + run.stderr)
    print(f"schemathesis: {elapsed:.0f} s; output in {out}")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
    interactions = yaml.safe_load(cassette.read_text())["http_interactions"]
    assert len(interactions) >= MIN_CASES
    # the second user's ids were asked for (mixed in by fuzz_hooks) ...
    foreign = {f"/{kind}s/{item_id}" for kind in ("bookmark", "task", "note", "tag")
               for item_id in bee["ids"][f"{kind}_id"]}
    foreign |= {f"/time-entries/{item_id}" for item_id in bee["ids"]["entry_id"]}
    asked = {interaction["request"]["uri"].split("/api/v1", 1)[1].split("?")[0]
             for interaction in interactions}
    assert asked & foreign
    # ... and nothing of theirs changed
    assert _snapshot(server, bee["token"]) == bee["items"]
