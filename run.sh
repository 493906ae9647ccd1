#!/usr/bin/env bash
# Install Trackeep into .venv and start it: a window where there is a display,
# otherwise a server on 127.0.0.1 whose URL is printed. Extra arguments go to `trackeep`
# (for example: ./run.sh serve --port 8080).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/common.sh
extras="server,redis,postgres"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  extras="$extras,desktop"
  apt_install "${QT_RUNTIME_PACKAGES[@]}"
fi
ensure_venv "$extras"
exec .venv/bin/trackeep "$@"
