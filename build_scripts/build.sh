#!/usr/bin/env bash
# Build the one-folder app with PyInstaller and pack it for this OS (Linux: .tar.gz with a
# launcher and a .desktop entry). Usage: build_scripts/build.sh [--no-archive]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
cd "$ROOT"
VERSION="$("$PY" -c 'import core; print(core.__version__)')"
ARCH="$(uname -m)"
DIST="$ROOT/dist"
start=$(date +%s)

"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$ROOT/build/pyinstaller" build_scripts/semscale.spec

APP="$DIST/semscale"
install -m 0755 build_scripts/linux/semscale.sh "$APP/semscale.sh"
install -m 0644 build_scripts/linux/semscale.desktop "$APP/semscale.desktop"
install -m 0755 build_scripts/linux/install-desktop-entry.sh "$APP/install-desktop-entry.sh"
cp resources/icons/app.svg "$APP/semscale.svg"
echo "built $APP in $(( $(date +%s) - start )) s, $(du -sh "$APP" | cut -f1)"

if [ "${1:-}" != "--no-archive" ]; then
  ARCHIVE="$DIST/semscale-$VERSION-linux-$ARCH.tar.gz"
  if command -v pigz >/dev/null; then
    tar -C "$DIST" -cf - semscale | pigz -6 > "$ARCHIVE"
  else
    tar -C "$DIST" -czf "$ARCHIVE" semscale
  fi
  echo "archive $ARCHIVE ($(du -sh "$ARCHIVE" | cut -f1)) after $(( $(date +%s) - start )) s"
fi
