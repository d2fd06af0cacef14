#!/usr/bin/env bash
# Check that the system libraries Qt's xcb platform plugin links are installed, before the
# desktop app starts (a missing one makes Qt abort with "could not load the Qt platform
# plugin xcb"). As root on Debian/Ubuntu the missing packages are installed with apt-get;
# otherwise the exact install command is printed and the exit status is 1.
#
#   build_scripts/desktop_libs.sh [--check] [--plugin FILE] [PYTHON]
#
# --check   only report (never install), even as root
# --plugin  the plugin to inspect (default: PySide6's platforms/libqxcb.so of PYTHON)
# APT_GET   the apt-get command to use (e.g. "apt-get -s" to simulate)
set -euo pipefail

check_only=0
plugin=""
py="python3"
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check_only=1 ;;
    --plugin) plugin="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) py="$1" ;;
  esac
  shift
done

if [ "$(uname -s)" != "Linux" ]; then
  exit 0  # Windows and macOS wheels carry everything Qt needs
fi
if [ -z "$plugin" ]; then
  plugin="$("$py" -c 'import os, PySide6; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt", "plugins", "platforms", "libqxcb.so"))')"
fi
if [ ! -f "$plugin" ]; then
  echo "Qt's xcb platform plugin is missing ($plugin): reinstall PySide6 (make install)" >&2
  exit 1
fi

# Library file names (sonames) the dynamic loader cannot find for the plugin.
missing_sonames() {
  ldd "$1" 2>/dev/null | awk '/=> not found/ { print $1 }' | sort -u
}

# Debian's package name for a library soname (Debian policy: libfoo.so.N -> libfooN,
# libfoo2.so.N -> libfoo2-N), checked against apt's lists where they exist.
debian_package() {
  local so="$1" base ver name
  case "$so" in
    libglib-2.0.so.*|libgthread-2.0.so.*|libgobject-2.0.so.*) name="libglib2.0-0" ;;
    *)
      base="${so%%.so.*}"
      ver="${so##*.so.}"
      ver="${ver%%.*}"
      if [[ "$base" =~ [0-9]$ ]]; then name="$base-$ver"; else name="$base$ver"; fi
      name="$(echo "$name" | tr '[:upper:]' '[:lower:]')"
      ;;
  esac
  # Debian 13 / Ubuntu 24.04 renamed some libraries for 64-bit time_t (libglib2.0-0t64)
  if command -v apt-cache >/dev/null 2>&1 && ! apt-cache show "$name" >/dev/null 2>&1 \
     && apt-cache show "${name}t64" >/dev/null 2>&1; then
    name="${name}t64"
  fi
  echo "$name"
}

missing="$(missing_sonames "$plugin")"
if [ -z "$missing" ]; then
  exit 0
fi
packages="$(for so in $missing; do debian_package "$so"; done | sort -u | tr '\n' ' ' | sed 's/ $//')"
echo "Qt's xcb platform plugin needs system libraries that are not installed: $(echo $missing)" >&2

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install them with your package manager (Debian/Ubuntu packages: $packages; on Fedora:" \
       "sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image xcb-util-renderutil libxkbcommon-x11)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || [ "$check_only" = 1 ]; then
  echo "install them with:" >&2
  echo "  sudo apt-get install $packages" >&2
  exit 1
fi

apt="${APT_GET:-apt-get}"
echo "installing: $packages" >&2
DEBIAN_FRONTEND=noninteractive $apt install -y -qq $packages \
  || { $apt update -qq && DEBIAN_FRONTEND=noninteractive $apt install -y -qq $packages; }
still="$(missing_sonames "$plugin")"
if [ -n "$still" ]; then
  echo "still missing after installing $packages: $(echo $still)" >&2
  exit 1
fi
