#!/usr/bin/env sh
# Start semscale from wherever the folder was unpacked.
HERE="$(cd "$(dirname "$0")" && pwd)"
exec "$HERE/semscale" "$@"
