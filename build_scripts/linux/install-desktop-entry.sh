#!/usr/bin/env sh
# Add semscale to the desktop's application menu for this user (no root needed).
HERE="$(cd "$(dirname "$0")" && pwd)"
APPS="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
ICONS="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
mkdir -p "$APPS" "$ICONS"
cp "$HERE/semscale.svg" "$ICONS/semscale.svg"
sed "s|^Exec=.*|Exec=\"$HERE/semscale.sh\"|" "$HERE/semscale.desktop" > "$APPS/semscale.desktop"
echo "semscale added to your applications menu ($APPS/semscale.desktop)"
