#!/usr/bin/env bash
# Screenshots of every chapter's closing summary and exercises, as a reader sees them:
# the exercises numbered, the solutions collapsed ("Click to show").
#
#   tests/screenshots.sh [HTML_DIR] [OUT_DIR]
#
# HTML_DIR is a built book (default _build/html, from `jupyter-book build .`);
# OUT_DIR receives one PNG per chapter (default _build/screenshots). Needs headless
# Chromium (Debian: `apt-get install chromium`). Headless Chromium draws a blank page
# when it is asked to scroll to an anchor, so each page is copied beside itself with
# a style sheet that hides every section but the summary and the exercises.
set -euo pipefail
html=${1:-_build/html}
out=${2:-_build/screenshots}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "no headless Chromium found: apt-get install chromium" >&2
    exit 1
fi
mkdir -p "$out"
style='<style>article section > section:not(#summary):not(#exercises) {display: none !important}</style>'
shopt -s nullglob
for page in "$html"/book/[0-9][0-9]_*.html; do
    name=$(basename "$page" .html)
    if ! grep -q 'id="exercises"' "$page"; then
        echo "$name: no exercises section" >&2
        exit 1
    fi
    view=$(dirname "$page")/.screenshot-$name.html
    sed "s|</head>|$style</head>|" "$page" > "$view"
    "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=10000 \
        --window-size=1200,2600 --screenshot="$out/$name.png" "file://$(realpath "$view")" 2>/dev/null
    rm -f "$view"
    echo "$out/$name.png"
done
