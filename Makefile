# The test loops. `make test-fast` while working (SQLite, no child processes, no browser, no
# window, no build: under 2 minutes on a 2-core machine); `make test` before committing: the
# whole gate, ./test.sh (ruff, then the full suite on SQLite, then on PostgreSQL).

PYTEST = .venv/bin/python -m pytest
FAST_MARKERS = not slow and not browser and not desktop and not packaging

.PHONY: test test-fast lint

test:
	./test.sh

test-fast: .venv/bin/pytest
	.venv/bin/ruff check .
	$(PYTEST) -n 2 -q --durations=10 -m "$(FAST_MARKERS)"

lint: .venv/bin/pytest
	.venv/bin/ruff check .

.venv/bin/pytest:
	bash -c 'source scripts/common.sh && ensure_venv dev'
