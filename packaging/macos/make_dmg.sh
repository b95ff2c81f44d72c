#!/usr/bin/env bash
# macOS recipe (run on a Mac with Xcode command line tools):
#   1. python -m PyInstaller --noconfirm packaging/gradcam-viewer.spec
#      -> dist/Grad-CAM Viewer.app (the spec's BUNDLE section: icon, bundle id, .dcm/.png types)
#   2. packaging/macos/make_dmg.sh
#      -> dist/gradcam-viewer-<version>-macos.dmg (drag-to-Applications disk image)
# Signing and notarisation need an Apple Developer ID; set CODESIGN_ID to sign.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(python -c "import gradcam_viewer; print(gradcam_viewer.__version__)")
APP="dist/Grad-CAM Viewer.app"
DMG="dist/gradcam-viewer-${VERSION}-macos.dmg"
[ -d "$APP" ] || { echo "build the .app first (PyInstaller spec)"; exit 1; }
if [ -n "${CODESIGN_ID:-}" ]; then
  codesign --deep --force --options runtime --sign "$CODESIGN_ID" "$APP"
fi
STAGE=$(mktemp -d)
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "Grad-CAM Viewer" -srcfolder "$STAGE" -ov -format UDZO "$DMG"
rm -rf "$STAGE"
echo "$DMG"
