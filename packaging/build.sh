#!/usr/bin/env bash
# Build Trackeep's executables with PyInstaller, from a clean checkout:
#
#   packaging/build.sh            the server binary, and the desktop app when PySide6 is there
#   packaging/build.sh server     dist/trackeep-server: one file, `trackeep-server serve ...`
#   packaging/build.sh desktop    dist/Trackeep/: a folder with the window (Qt via PySide6)
#
# Without PYTHON, it makes .venv and installs the project with the extras a build needs
# (`desktop` too for a desktop build). With PYTHON=/path/to/python it uses that interpreter as
# it is. DIST_DIR and BUILD_DIR move the output (default dist/) and work files (build/).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-all}"
case "$target" in all|server|desktop) ;; *) echo "usage: $0 [all|server|desktop]" >&2; exit 2 ;; esac
dist="${DIST_DIR:-dist}"
work="${BUILD_DIR:-build}"

if [ -z "${PYTHON:-}" ]; then
  source scripts/common.sh
  extras="server,redis,postgres,packaging"
  [ "$target" = desktop ] && extras="$extras,desktop"
  ensure_venv "$extras"
  PYTHON=.venv/bin/python
fi

has_qt() {
  QT_API=pyside6 "$PYTHON" -c 'import importlib.util as u, sys
sys.exit(0 if u.find_spec("webview") and u.find_spec("PySide6.QtWebEngineWidgets") else 1)'
}

build() {
  echo "== building the $1 executable" >&2
  TRACKEEP_BUILD="$1" QT_API=pyside6 "$PYTHON" -m PyInstaller --noconfirm --log-level ERROR \
    --distpath "$dist" --workpath "$work/$1" packaging/trackeep.spec
}

if [ "$target" != desktop ]; then
  build server
  echo "built $dist/trackeep-server" >&2
fi
if [ "$target" = desktop ] || { [ "$target" = all ] && has_qt; }; then
  has_qt || { echo "the desktop build needs pywebview and PySide6 (pip install -e '.[desktop]')" >&2; exit 1; }
  build desktop
  echo "built $dist/Trackeep/ (run $dist/Trackeep/trackeep)" >&2
elif [ "$target" = all ]; then
  echo "note: PySide6 is not installed: no desktop app built (pip install -e '.[desktop]')" >&2
fi
