#!/usr/bin/env bash
# Screenshot of the viewer in a real X server (Xvfb), for docs/screenshot.png.
# Needs: apt-get install xvfb imagemagick libxcb-cursor0 (and the other xcb libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/screenshot.png}
SAMPLE=${2:-resources/samples/phantom_02_cardiomegaly_effusion.dcm}
export DISPLAY=:97
Xvfb $DISPLAY -screen 0 1400x900x24 >/dev/null 2>&1 &
XPID=$!
trap 'kill $APID $XPID 2>/dev/null || true' EXIT
sleep 1
.venv/bin/python -m gradcam_viewer "$SAMPLE" >/dev/null 2>&1 &
APID=$!
sleep "${WAIT:-20}"
import -window root "$OUT"
echo "$OUT"
