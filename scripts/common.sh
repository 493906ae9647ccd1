# Shared by run.sh and test.sh: make .venv and install the project into it.
# Usage: source scripts/common.sh; ensure_venv EXTRAS

# Debian libraries that Qt WebEngine (the desktop window on Linux) loads at run time; most
# come with a desktop, a server or container may lack them (libxcb-cursor0 above all).
QT_RUNTIME_PACKAGES=(
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-randr0 libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 libgbm1
  libnss3 libxkbfile1 libxcomposite1 libxdamage1 libxrandr2 libxtst6 libasound2
  libfontconfig1 libdbus-1-3
)

apt_install() {
  # Install Debian packages when missing, as root or through sudo; otherwise say what is missing.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "note: missing Debian packages ${missing[*]} (install them as root)" >&2; return 0
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: missing packages ${missing[*]} and no apt-get to install them" >&2; return 0
  fi
  echo "installing ${missing[*]} ..." >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

ensure_venv() {
  # Make .venv and install the project with EXTRAS into it, once: a stamp records what was
  # installed (pyproject.toml's hash and the extras), so a second run skips pip entirely and
  # starts in about a second. The install is editable, so code changes need no reinstall;
  # a changed pyproject.toml or other extras do. pip's output goes to .venv/install.log and
  # is shown only when it fails.
  local extras="$1"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; python3 -m venv .venv; }
  fi
  local stamp=".venv/.trackeep-installed" hash
  hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ -f "$stamp" ] && grep -qxF "$hash [$extras]" "$stamp"; then
    return 0
  fi
  echo "installing Trackeep [$extras] into .venv (once; later runs skip this) ..." >&2
  if ! { .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"; } \
       >.venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "error: installing Trackeep failed (the log above is in .venv/install.log)" >&2
    return 1
  fi
  # One line per set of extras installed from this pyproject.toml (installs add up: test.sh's
  # and run.sh's each find their own); lines of an older pyproject.toml are dropped.
  { grep "^$hash " "$stamp" 2>/dev/null || true; echo "$hash [$extras]"; } | sort -u > "$stamp.new"
  mv "$stamp.new" "$stamp"
}
