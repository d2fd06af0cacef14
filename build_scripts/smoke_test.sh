#!/usr/bin/env bash
# Unpack the built app somewhere else and run its self-test off-screen, as a user would;
# then start it in a real X server (Xvfb, Qt's xcb plugin with the libraries the bundle
# carries) and save a screenshot to dist/smoke-xcb.png to look at.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIST="$ROOT/dist"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ARCHIVE="$(ls -t "$DIST"/semscale-*.tar.gz 2>/dev/null | head -n1 || true)"
if [ -n "$ARCHIVE" ]; then
  tar -C "$WORK" -xzf "$ARCHIVE"
else
  cp -a "$DIST/semscale" "$WORK/semscale"
fi
# a clean HOME: the frozen app must create its cache and settings in the user's folders
export HOME="$WORK/home" XDG_CACHE_HOME="$WORK/home/.cache" XDG_CONFIG_HOME="$WORK/home/.config" \
       XDG_DATA_HOME="$WORK/home/.local/share"
mkdir -p "$HOME"
export QT_QPA_PLATFORM=offscreen
cd "$WORK"
"$WORK/semscale/semscale.sh" --self-test
"$WORK/semscale/semscale.sh" cli --version
test -z "$(find "$WORK/semscale" -newer "$WORK/semscale/semscale" -name '*.sqlite' -print -quit)" \
  || { echo "the app wrote its cache inside the bundle"; exit 1; }
unset QT_QPA_PLATFORM
"$ROOT/build_scripts/xvfb_screenshot.sh" "$DIST/smoke-xcb.png" "$WORK/semscale/semscale.sh"
echo "smoke test passed: $(du -sh "$WORK/semscale" | cut -f1) unpacked; look at $DIST/smoke-xcb.png"
