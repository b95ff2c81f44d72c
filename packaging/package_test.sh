#!/usr/bin/env bash
# `make package-test`: build the bundle, then run it from the bundle (never the source tree):
# self-test offscreen and under a real X server (Xvfb), `explain` on the DICOM and PNG samples
# compared with the source tree's figures, and the same again from the .deb unpacked with dpkg -x.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
T=${TIMEOUT:-600}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SAMPLES=resources/samples
DCM=$SAMPLES/phantom_02_cardiomegaly_effusion.dcm
PNG=$SAMPLES/phantom_03_nodule.png

if [ -z "${SKIP_BUILD:-}" ]; then  # SKIP_BUILD=1: test the bundle already in dist/
  echo "== build"
  timeout 3600 $PY packaging/build.py
fi

echo "== source-tree reference"
timeout $T $PY -m gradcam_viewer explain "$DCM" "$PNG" --out "$WORK/ref" --overlays Nodule

check_explain() {  # $1 = command, $2 = output folder
  timeout $T "$1" explain "$DCM" "$PNG" --out "$2" --overlays Nodule
  $PY - "$WORK/ref" "$2" <<'PYEOF'
import json, sys
from pathlib import Path
ref, out = map(Path, sys.argv[1:3])
for name in ("phantom_02_cardiomegaly_effusion.json", "phantom_03_nodule.json"):
    a = json.loads((ref / name).read_text())["probabilities"]
    b = json.loads((out / name).read_text())["probabilities"]
    worst = max(abs(a[k] - b[k]) for k in a)
    assert worst < 1e-5, (name, worst)
    assert (out / name.replace(".json", "_Nodule.png")).stat().st_size > 0
print(f"   explain outputs equal the source tree's (max |dp| < 1e-5): {out}")
PYEOF
}

check_single_instance() {  # $1 = command, $2 = tag: a second start hands its file over
  local exe=$1 dir="$WORK/$2-single" pid start
  local log="$dir/log/gradcam-viewer.log"
  local envs=(USER="gcv-package-$2" LOGNAME="gcv-package-$2" QT_QPA_PLATFORM=offscreen
              GRADCAM_VIEWER_CONFIG_DIR="$dir/config" GRADCAM_VIEWER_LOG_DIR="$dir/log"
              XDG_CONFIG_HOME="$dir/xdg")
  env "${envs[@]}" "$exe" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -qs "listening for other" "$log" && break; sleep 0.1; done
  start=$(date +%s.%N)
  env "${envs[@]}" timeout 60 "$exe" "$(realpath "$PNG")"
  echo "   the second start exited 0 after $(echo "$(date +%s.%N) - $start" | bc) s"
  for _ in $(seq 600); do grep -qs "opening phantom_03_nodule.png" "$log" && break; sleep 0.1; done
  grep -q "opening phantom_03_nodule.png" "$log"
  echo "   and the running viewer opened its file"
  kill "$pid"
  wait "$pid" || true
  rm -f "${TMPDIR:-/tmp}/gradcam-viewer-gcv-package-$2-"*  # the socket SIGTERM left behind
}

run_bundle() {  # $1 = path of the gradcam-viewer executable
  local exe=$1 tag=$2
  echo "== $tag: self-test offscreen"
  start=$(date +%s.%N)
  QT_QPA_PLATFORM=offscreen timeout $T "$exe" --self-test
  echo "   took $(echo "$(date +%s.%N) - $start" | bc) s"
  echo "== $tag: self-test under Xvfb (xcb)"
  env -u QT_QPA_PLATFORM timeout $T xvfb-run -a -s "-screen 0 1600x1000x24" "$exe" --self-test
  echo "== $tag: one viewer per user (QtNetwork's local socket is in the bundle)"
  check_single_instance "$exe" "$tag"
  echo "== $tag: explain"
  check_explain "$exe" "$WORK/$tag"
  echo "== $tag: every command is in the bundle; sanity writes its report (matplotlib)"
  for command in explain manifest calibrate sanity evaluate; do
    timeout $T "$exe" $command --help >/dev/null
  done
  timeout $T "$exe" sanity "$PNG" --steps 1 --out "$WORK/$tag-sanity"
  test -s "$WORK/$tag-sanity/sanity.png" && test -s "$WORK/$tag-sanity/sanity.pdf"
}

run_bundle dist/gradcam-viewer/gradcam-viewer bundle

echo "== .deb: unpack with dpkg -x and run the installed command"
DEB=$(ls dist/gradcam-viewer_*_amd64.deb | head -1)
dpkg-deb --info "$DEB" | sed -n '/Depends/p'
dpkg -x "$DEB" "$WORK/root"
test -f "$WORK/root/usr/share/applications/gradcam-viewer.desktop"
test -f "$WORK/root/usr/share/icons/hicolor/256x256/apps/gradcam-viewer.png"
test "$(readlink "$WORK/root/usr/bin/gradcam-viewer")" = /opt/gradcam-viewer/gradcam-viewer
run_bundle "$WORK/root/opt/gradcam-viewer/gradcam-viewer" deb
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate packaging/linux/gradcam-viewer.desktop && echo "   desktop entry valid"
fi
echo "installed size: $(du -sh "$WORK/root/opt/gradcam-viewer" | cut -f1)"
echo "package-test: OK"
