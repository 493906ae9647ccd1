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
  local extras="$1"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; python3 -m venv .venv; }
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
}
