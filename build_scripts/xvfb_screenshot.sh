#!/usr/bin/env bash
# Start the desktop app in a real X server (Xvfb) with Qt's xcb platform plugin — not
# off-screen — wait for its main window, and save a screenshot of the whole screen.
#
#   build_scripts/xvfb_screenshot.sh OUT.png COMMAND [ARGS...]
#
# Exits 0 when the window appeared, was drawn (not one flat colour) and the app was still
# running when the screenshot was taken (once the window stopped changing, or after
# SEMSCALE_STABLE_TIMEOUT s); 1 otherwise (with the app's output). Needs Xvfb,
# xdotool and ImageMagick (Debian/Ubuntu: apt-get install xvfb xdotool imagemagick).
# Next to OUT.png it writes OUT-window.png (the main window alone), OUT.log (the app's
# output) and OUT.libs (the shared libraries the app's process had loaded, from /proc).
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,12p' "$0"
  exit 2
fi
OUT="$1"
shift
for tool in Xvfb xdotool import convert compare; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install xvfb xdotool imagemagick)" >&2; exit 1; }
done
WAIT="${SEMSCALE_WINDOW_TIMEOUT:-120}"
SETTLE="${SEMSCALE_SETTLE_SECONDS:-5}"
BASE="${OUT%.png}"
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT" "$BASE-window.png" "$BASE.libs"

n=90
while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n + 1)); done
export DISPLAY=":$n"
LOG="$BASE.log"
Xvfb "$DISPLAY" -screen 0 1920x1080x24 -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
APP=""
cleanup() {
  if [ -n "$APP" ] && kill -0 "$APP" 2>/dev/null; then
    kill "$APP" 2>/dev/null || true
    wait "$APP" 2>/dev/null || true
  fi
  kill "$XVFB" 2>/dev/null || true
  wait "$XVFB" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.2; done
[ -e "/tmp/.X11-unix/X$n" ] || { echo "Xvfb did not start on $DISPLAY" >&2; exit 1; }

QT_QPA_PLATFORM=xcb "$@" >"$LOG" 2>&1 &
APP=$!
start=$(date +%s)
WID=""
until WID="$(xdotool search --onlyvisible --name semscale 2>/dev/null | head -n1)" && [ -n "$WID" ]; do
  if ! kill -0 "$APP" 2>/dev/null; then
    echo "the app exited before showing a window:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  if [ $(( $(date +%s) - start )) -ge "$WAIT" ]; then
    echo "no semscale window after $WAIT s:" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  sleep 0.5
done
shown=$(( $(date +%s) - start ))
sleep "$SETTLE"
# Then wait (up to SEMSCALE_STABLE_TIMEOUT s) until the window has not changed for 6 s: on first launch
# the app renders its demo dataset and loads the demo backbones in the background.
prev="$BASE.prev.png"
cur="$BASE.cur.png"
import -window "$WID" "$prev" 2>/dev/null || true
same=0
since=$(date +%s)
while [ "$same" -lt 3 ] && [ $(( $(date +%s) - since )) -lt "${SEMSCALE_STABLE_TIMEOUT:-60}" ]; do
  sleep 2
  kill -0 "$APP" 2>/dev/null || break
  import -window "$WID" "$cur" 2>/dev/null || break
  changed="$(compare -metric AE "$prev" "$cur" null: 2>&1 || true)"
  mv -f "$cur" "$prev"
  if awk -v c="${changed%% *}" 'BEGIN { exit !(c ~ /^[0-9.e+]+$/ && c + 0 < 50) }'; then same=$((same + 1)); else same=0; fi
done
rm -f "$prev" "$cur"
if ! kill -0 "$APP" 2>/dev/null; then
  echo "the app exited after showing its window:" >&2
  tail -n 30 "$LOG" >&2
  exit 1
fi
# The process that owns the window (Qt sets _NET_WM_PID); its loaded libraries tell
# whether the xcb plugin's helpers came from the bundle or from the system.
PID="$(xdotool getwindowpid "$WID" 2>/dev/null || echo "$APP")"
awk '$6 ~ /\.so/ { print $6 }' "/proc/$PID/maps" 2>/dev/null | sort -u > "$BASE.libs" || true
title="$(xdotool getwindowname "$WID")"
eval "$(xdotool getwindowgeometry --shell "$WID")"  # WIDTH, HEIGHT
import -window root "$OUT"
import -window "$WID" "$BASE-window.png"
# A window that mapped but never painted is one flat colour (standard deviation 0).
spread="$(convert "$BASE-window.png" -colorspace Gray -format '%[fx:standard_deviation]' info:)"
colours="$(convert "$BASE-window.png" -format '%k' info:)"
if awk -v s="$spread" 'BEGIN { exit !(s < 0.02) }'; then
  echo "the window '$title' looks blank (grey-level spread $spread, $colours colours): see $OUT" >&2
  exit 1
fi
echo "window '$title' (${WIDTH}x${HEIGHT}, $colours colours) shown after ${shown} s, settled after $(( $(date +%s) - start )) s on $DISPLAY (xcb); screenshot $OUT"
