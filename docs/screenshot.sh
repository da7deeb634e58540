#!/usr/bin/env bash
# Refresh docs/images/report.png from the real report page (reports/index.html, written by `dvc repro report`)
# with headless Chromium at 1,400 px wide, as a reader's browser window shows it.
#   apt-get install chromium   (Debian's package; /usr/bin/chromium)
#   bash docs/screenshot.sh [reports/index.html] [docs/images/report.png] [height]
set -euo pipefail
cd "$(dirname "$0")/.."
page=$(realpath -m "${1:-reports/index.html}")
out=$(realpath -m "${2:-docs/images/report.png}")
height=${3:-2400}
[ -f "$page" ] || { echo "error: $page not found; run the main job (dvc repro) first" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --window-size=1400,"$height" --screenshot="$out" "file://$page" 2>/dev/null
echo "wrote $out (1400 x $height) from $page"
