#!/usr/bin/env bash
# Screenshots of every chapter's closing summary and exercises, as a reader sees them.
#
#   tests/screenshots.sh [HTML_DIR] [OUT_DIR]
#
# HTML_DIR is a built book (default _build/html, from `jupyter-book build .`). OUT_DIR
# (default _build/screenshots) receives two PNGs per chapter: NN_name.png as the page
# opens (the exercises numbered, the solutions collapsed behind "Click to show"), and
# NN_name-open.png with every solution shown, executed code and outputs included.
# Needs headless Chromium (Debian: `apt-get install chromium`). Headless Chromium draws
# a blank page when asked to scroll to an anchor, so each page is copied beside itself
# with a style sheet that hides every section but the summary and the exercises.
set -euo pipefail
html=${1:-_build/html}
out=${2:-_build/screenshots}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "no headless Chromium found: apt-get install chromium" >&2
    exit 1
fi
mkdir -p "$out"
only_end='article section > section:not(#summary):not(#exercises) {display: none !important}'
shown='.admonition.toggle-hidden .admonition-title ~ * {height: auto !important; opacity: 1 !important; visibility: visible !important}'
shopt -s nullglob
pages=("$html"/book/[0-9][0-9]_*.html)
if [ ${#pages[@]} -eq 0 ]; then
    echo "no chapter pages under $html/book: build the book first" >&2
    exit 1
fi
for page in "${pages[@]}"; do
    name=$(basename "$page" .html)
    if ! grep -q 'id="exercises"' "$page"; then
        echo "$name: no exercises section" >&2
        exit 1
    fi
    view=$(dirname "$page")/.screenshot-$name.html
    for mode in closed open; do
        style=$only_end
        suffix=
        height=2600
        if [ "$mode" = open ]; then
            style="$only_end $shown"
            suffix=-open
            height=7000
        fi
        sed "s|</head>|<style>$style</style></head>|" "$page" > "$view"
        "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=10000 \
            --window-size=1200,$height --screenshot="$out/$name$suffix.png" "file://$(realpath "$view")" 2>/dev/null
        echo "$out/$name$suffix.png"
    done
    rm -f "$view"
done
