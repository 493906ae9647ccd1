#!/usr/bin/env bash
# Install Trackeep with its test tools into .venv and run the whole test suite: once on
# SQLite and once on PostgreSQL, with the capability contracts on memory and on a real Redis.
# The tests start their own redis-server and PostgreSQL on spare ports (or use
# TRACKEEP_TEST_REDIS_URL / TRACKEEP_TEST_DATABASE_URL); this script installs the servers
# from Debian's packages when they are missing. Extra arguments go to pytest.
#
# Both passes run on two pytest-xdist workers (each with its own redis-server and PostgreSQL)
# and print the 25 slowest tests. `make test-fast` is the quick loop; this is the whole gate.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/common.sh
# xvfb, imagemagick and Qt's libraries: the desktop tests open the real window on a
# virtual screen and save screenshots of it; chromium drives the browser tests.
apt_install redis-server postgresql xvfb imagemagick chromium chromium-driver "${QT_RUNTIME_PACKAGES[@]}"
ensure_venv "dev"
echo "== ruff (style and imports)"
.venv/bin/ruff check .
echo "== mypy (types; the packages listed in pyproject's [tool.mypy])"
.venv/bin/mypy
echo "== eslint (static/js)"
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
# node_modules/.package-lock.json is written by npm ci: reinstall only when it is missing or
# older than package-lock.json, so a second run spends no time here.
npm_stamp=node_modules/.package-lock.json
if [ ! -e "$npm_stamp" ] || [ package-lock.json -nt "$npm_stamp" ]; then
  npm ci --silent --no-audit --no-fund
fi
npx --no eslint static/js
echo "== test suite on SQLite"
PYTEST=(.venv/bin/python -m pytest -n "${TRACKEEP_TEST_WORKERS:-2}" --durations=25)
"${PYTEST[@]}" "$@"
echo "== test suite on PostgreSQL (the window and the frozen binary run once, above)"
"${PYTEST[@]}" --db=postgres -m "not packaging and not desktop" "$@"
