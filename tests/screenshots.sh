#!/usr/bin/env bash
# Screenshots of a built book, at 1280 px wide, as a reader sees it.
#
#   tests/screenshots.sh [HTML_DIR] [OUT_DIR] [CHAPTERS]
#
# HTML_DIR is a built book (default _build/html, from `jupyter-book build .`). OUT_DIR (default
# _build/screenshots) receives, for every chapter NN_name (or those matching the glob CHAPTERS, e.g. '0[06]_*'):
#   NN_name-first.png     the first screen, as the page opens;
#   NN_name-figure.png    its headline figure: the first figure of a cell tagged `headline`, else the
#                         chapter's first figure (with what follows it on one screen);
#   NN_name.png           the summary and exercises, solutions collapsed behind "Click to show";
#   NN_name-open.png      the same with every solution shown, executed code and outputs included;
# and, for the synthesis, 06_name-answers.png: its `## Answers` section.
# Needs headless Chromium (Debian: `apt-get install chromium`). Headless Chromium draws a blank page
# when asked to scroll to an anchor, so each view is a copy of the page beside it that hides what
# comes before its target: a style sheet (summary and exercises) or a script run on load (the rest).
set -euo pipefail
html=${1:-_build/html}
out=${2:-_build/screenshots}
only=${3:-[0-9][0-9]_*}
width=1280
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "no headless Chromium found: apt-get install chromium" >&2
    exit 1
fi
mkdir -p "$out"
only_end='article section > section:not(#summary):not(#exercises) {display: none !important}'
shown='.admonition.toggle-hidden .admonition-title ~ * {height: auto !important; opacity: 1 !important; visibility: visible !important}'
# Hide, inside the article, everything before the first element that a selector finds (the first
# selector that finds one wins); without a target, say so on the page.
from_target() {
    cat <<EOF
<script>window.addEventListener("load", function () {
  var target = null;
  for (const s of [$1]) { target = target || document.querySelector(s); }
  if (!target) { document.querySelector("article").innerHTML = "<h1>no target for this view</h1>"; return; }
  for (var node = target; node && node.tagName !== "ARTICLE"; node = node.parentElement) {
    for (var sib = node.previousElementSibling; sib; sib = sib.previousElementSibling) { sib.style.display = "none"; }
  }
  window.scrollTo(0, 0);
});</script>
EOF
}
shoot() {  # shoot PAGE HEAD_INSERT HEIGHT PNG
    local view
    view=$(dirname "$1")/.screenshot-$(basename "$4" .png).html
    python3 - "$1" "$view" "$2" <<'PY'
import sys
page, view, insert = sys.argv[1:]
text = open(page, encoding="utf-8").read()
open(view, "w", encoding="utf-8").write(text.replace("</head>", insert + "</head>", 1))
PY
    "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
        --disable-sync --no-first-run --hide-scrollbars --virtual-time-budget=10000 \
        --window-size=$width,"$3" --screenshot="$4" "file://$(realpath "$view")" 2>/dev/null
    rm -f "$view"
    echo "$4"
}
shopt -s nullglob
pages=("$html"/book/$only.html)
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
    shoot "$page" "" 900 "$out/$name-first.png"
    shoot "$page" "$(from_target '".tag_headline img", "article .cell_output img"')" 1100 "$out/$name-figure.png"
    shoot "$page" "<style>$only_end</style>" 2600 "$out/$name.png"
    shoot "$page" "<style>$only_end $shown</style>" 7000 "$out/$name-open.png"
    if grep -q 'id="answers"' "$page"; then
        shoot "$page" "$(from_target '"section#answers"')" 2400 "$out/$name-answers.png"
    fi
done
