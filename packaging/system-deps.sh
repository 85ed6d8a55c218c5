#!/usr/bin/env bash
# Debian packages the Linux installers need at build time, and the bundle's smoke test needs.
#
#   bash packaging/system-deps.sh [--smoke]
#
# Build: the X libraries Qt's xcb plugin links to. The bundle carries them (PyInstaller copies
# them from this machine), because bare Debian desktops lack some (libxcb-cursor0 above all).
# --smoke adds Xvfb and xdotool, for tests/project/test_bundle.py's window check.
# Installs what is missing when run as root with apt-get; otherwise prints the command.
set -euo pipefail
packages=(libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0
          libxcb-randr0 libxcb-xkb1 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libegl1 libgl1)
[ "${1:-}" = --smoke ] && packages+=(xvfb xdotool)
command -v dpkg-query >/dev/null || { echo "system-deps: not a Debian system; install the equivalents of: ${packages[*]}" >&2; exit 0; }
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "system-deps: installing ${missing[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null
else
  echo "system-deps: missing Debian packages; run: sudo apt-get install ${missing[*]}" >&2
  exit 2
fi
