#!/usr/bin/env bash
# Check the built app as a user would get it: unpacked somewhere else, an empty home folder,
# no network, no system libraries on LD_LIBRARY_PATH.
#
#   build_scripts/smoke_test.sh
#
# 1. its self-test off-screen (a short real sweep through the worker thread) and `cli --version`;
# 2. what the bundle carries: Qt's xcb plugin with every libxcb-* / libxkbcommon / libX11-xcb
#    library it links resolved inside the bundle (ldd), the WordNet lexicon, wordfreq's English
#    word lists only;
# 3. offline first-launch features of the frozen app: Suggest from the bundled WordNet lexicon
#    (`cli suggest`; as root also with the system's WordNet hidden, so that the automatic lookup
#    has to find the bundled one) and a sweep with `--class-frequency wordfreq`;
# 4. the app in a real X server (Xvfb, Qt's xcb platform, not off-screen): the main window
#    must appear and paint, and its process must have loaded the xcb helpers from the bundle.
#    Screenshot: dist/smoke/xcb-window.png (the window) and dist/smoke/xcb.png (the screen).
#
# SEMSCALE_SMOKE_PANELS=1 also saves every panel and the Suggest dialog of the frozen app
# (`--screenshot-panels`, a demo sweep of two backbones: several minutes on 2 cores) to
# dist/smoke/panels/. Nothing may be written inside the bundle.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIST="$ROOT/dist"
SMOKE="$DIST/smoke"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$SMOKE"
mkdir -p "$SMOKE"
ARCHIVE="$(ls -t "$DIST"/semscale-*.tar.gz 2>/dev/null | head -n1 || true)"
if [ -n "$ARCHIVE" ] && [ "$ARCHIVE" -nt "$DIST/semscale/semscale" ]; then
  tar -C "$WORK" -xzf "$ARCHIVE"
else
  cp -a "$DIST/semscale" "$WORK/semscale"
fi
APP="$WORK/semscale"
INTERNAL="$APP/_internal"
[ -d "$INTERNAL" ] || INTERNAL="$APP"  # PyInstaller < 6 kept everything next to the executable
fail() { echo "smoke test FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

# a clean HOME: the frozen app must create its cache and settings in the user's folders
export HOME="$WORK/home" XDG_CACHE_HOME="$WORK/home/.cache" XDG_CONFIG_HOME="$WORK/home/.config" \
       XDG_DATA_HOME="$WORK/home/.local/share"
unset LD_LIBRARY_PATH PYTHONPATH PYTHONHOME SEMSCALE_WORDNET SEMSCALE_CACHE_DIR SEMSCALE_DATA_DIR \
      SEMSCALE_GUI_SETTINGS WNSEARCHDIR WNHOME NLTK_DATA
mkdir -p "$HOME"
touch "$WORK/started"
cd "$WORK"

step "self-test (off-screen)"
QT_QPA_PLATFORM=offscreen "$APP/semscale.sh" --self-test
"$APP/semscale.sh" cli --version

step "bundle contents"
PLUGIN="$(find "$INTERNAL" -path '*/platforms/libqxcb.so' -print -quit)"
[ -n "$PLUGIN" ] || fail "Qt's xcb platform plugin (platforms/libqxcb.so) is not in the bundle"
# The bootloader puts the bundle's top folder on the library path, as ldd sees it here.
LDD="$(LD_LIBRARY_PATH="$INTERNAL" ldd "$PLUGIN")"
echo "$LDD" > "$SMOKE/libqxcb.ldd"
helpers="$(echo "$LDD" | awk '$1 ~ /^(libxcb-|libxkbcommon|libX11-xcb)/')"
[ -n "$helpers" ] || fail "ldd lists none of the xcb helper libraries for $PLUGIN"
outside="$(echo "$helpers" | awk -v b="$INTERNAL/" 'index($3, b) != 1 { print $1 " => " $3 }')"
[ -z "$outside" ] || fail "xcb libraries of $PLUGIN that resolve outside the bundle: $outside"
echo "xcb plugin: $(echo "$helpers" | wc -l) helper libraries inside the bundle" \
     "($(echo "$helpers" | awk '{ print $1 }' | tr '\n' ' '))"
echo "from the system (like libc): $(echo "$LDD" | awk -v b="$INTERNAL/" '$3 ~ /^\// && index($3, b) != 1 { print $1 }' | tr '\n' ' ')"
LEXICON="$INTERNAL/resources/wordnet/wordnet-nouns.zip"
[ -s "$LEXICON" ] || fail "the WordNet lexicon is not in the bundle ($LEXICON)"
echo "WordNet lexicon: $(du -h "$LEXICON" | cut -f1)"
WF="$INTERNAL/wordfreq/data"
[ -d "$WF" ] || fail "wordfreq's data folder is not in the bundle ($WF)"
ls "$WF" > "$SMOKE/wordfreq-data.txt"
other="$(grep -v '_en\.msgpack\.gz$' "$SMOKE/wordfreq-data.txt" || true)"
[ -z "$other" ] || fail "wordfreq data for languages other than English in the bundle: $(echo $other)"
grep -q '^large_en\.msgpack\.gz$' "$SMOKE/wordfreq-data.txt" || fail "wordfreq's large_en word list is missing"
echo "wordfreq data: $(tr '\n' ' ' < "$SMOKE/wordfreq-data.txt")($(du -sh "$WF" | cut -f1))"
[ ! -e "$INTERNAL/nltk_data" ] || fail "the bundle carries the build machine's nltk_data ($(du -sh "$INTERNAL/nltk_data" | cut -f1))"

step "Suggest from the bundled WordNet lexicon (offline, empty home)"
printf 'car\ndog\nsea lion\n' > "$WORK/classes.txt"
SEMSCALE_WORDNET=bundled "$APP/semscale.sh" cli suggest --classes "$WORK/classes.txt" --per-class 4 \
  --out "$SMOKE/suggest.csv" 2> "$WORK/suggest.err" || { cat "$WORK/suggest.err" >&2; fail "cli suggest"; }
grep -q '\[bundled\]' "$WORK/suggest.err" || { cat "$WORK/suggest.err" >&2; fail "suggest did not use the bundled lexicon"; }
grep -qx 'car,automobile,wordnet' "$SMOKE/suggest.csv" || { cat "$SMOKE/suggest.csv" >&2; fail "no WordNet synonyms for 'car'"; }
echo "$(grep -c ',wordnet' "$SMOKE/suggest.csv") names suggested for 3 classes"
if [ "$(id -u)" = 0 ] && [ -d /usr/share/wordnet ] && command -v unshare >/dev/null \
   && unshare -m true 2>/dev/null; then
  # the automatic lookup prefers a system WordNet; hide it, as on a fresh desktop
  unshare -m sh -c 'mount -t tmpfs none /usr/share/wordnet && exec "$0" cli suggest --classes "$1" --per-class 4 --out "$2"' \
    "$APP/semscale.sh" "$WORK/classes.txt" "$WORK/suggest-auto.csv" 2> "$WORK/suggest-auto.err" \
    || { cat "$WORK/suggest-auto.err" >&2; fail "cli suggest with the system WordNet hidden"; }
  grep -q '\[bundled\]' "$WORK/suggest-auto.err" \
    || { cat "$WORK/suggest-auto.err" >&2; fail "without a system WordNet the lookup did not find the bundled one"; }
  echo "with /usr/share/wordnet hidden the automatic lookup found the bundled lexicon"
fi

step "sweep with wordfreq class frequencies (offline)"
"$APP/semscale.sh" cli demo-data --out "$WORK/demo" --per-class 3 > /dev/null
"$APP/semscale.sh" cli sweep --dataset "$WORK/demo/images" --labels "$WORK/demo/labels.csv" --model demo-vit \
  --templates plain --levels 1,2 --class-frequency wordfreq --out "$WORK/run" --quiet
cp "$WORK/run/frequency.csv" "$SMOKE/frequency.csv"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "frequency") c = i; next }
         !(c && $c > 0) { bad++ } END { exit !(NR > 1 && c && !bad) }' "$SMOKE/frequency.csv" \
  || { head -n 5 "$SMOKE/frequency.csv" >&2; fail "wordfreq frequencies missing or zero in frequency.csv"; }
echo "$(($(wc -l < "$SMOKE/frequency.csv") - 1)) class rows with a wordfreq frequency"

if [ "${SEMSCALE_SMOKE_PANELS:-0}" = 1 ]; then
  step "every panel and the Suggest dialog (off-screen)"
  SEMSCALE_WORDNET=bundled QT_QPA_PLATFORM=offscreen "$APP/semscale.sh" --screenshot-panels "$SMOKE/panels"
  [ -s "$SMOKE/panels/suggest-review.png" ] || fail "the Suggest dialog found no WordNet (no suggest-review.png)"
fi

step "main window in a real X server (Xvfb, xcb)"
"$ROOT/build_scripts/xvfb_screenshot.sh" "$SMOKE/xcb.png" "$APP/semscale.sh"
for lib in libqxcb.so libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 libxkbcommon-x11.so.0; do
  path="$(grep -m1 "/$lib\$" "$SMOKE/xcb.libs" || true)"
  [ -n "$path" ] || fail "the app's process did not load $lib (see $SMOKE/xcb.libs)"
  case "$path" in "$WORK"/*) ;; *) fail "the app loaded $lib from $path, not from the bundle" ;; esac
done
echo "the window's process loaded Qt's xcb plugin and its helpers from the bundle"
if grep -Ei 'could not (load|find)|cannot find font|qt.qpa.fonts' "$SMOKE/xcb.log"; then
  fail "Qt warnings in the app's output ($SMOKE/xcb.log)"
fi

wrote="$(find "$APP" -newer "$WORK/started" -print -quit)"
[ -z "$wrote" ] || fail "the app wrote inside its own folder ($wrote)"
echo "smoke test passed: $(du -sh "$APP" | cut -f1) unpacked; look at $SMOKE/xcb-window.png"
