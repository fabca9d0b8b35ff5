"""How the chapters read, checked on their sources: a main line within its word budget, visible cells that read
as the experiment, no narrated history, no role that renders raw, and the two questions asked and answered.

The main line is the prose outside code cells, exercises, solutions and collapsed blocks (a directive with
``:class: dropdown`` or ``toggle``), the glue directives, headings and directive options: what a reader meets
when reading a chapter straight through. Tables and lists count.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))

MAX_MAIN_WORDS = 6500
MAX_VISIBLE_CELL_LINES = 25
MAX_VISIBLE_LINE_CHARS = 88  # what the column shows at 1280 px with code at 0.8em (_static/code.css)
HIDDEN_TAGS = re.compile(r"remove-cell|remove-input|hide-input")
HISTORY = re.compile(
    r"earlier version|an earlier (reading|rule|model)|does not survive|issue \d|the prototype|design runs|"
    r"previous version|was (changed|rewritten)|in preparation", re.I)
RAW_ROLE = re.compile(r"`\{(glue|term|ref|numref|prf:ref|cite)[^`]*\}`[a-zA-Z_]")
FENCE = re.compile(r"^(`{3,}|:{3,})\{([^}]*)\}(.*)$")
HIDDEN_DIRECTIVES = ("code-cell", "exercise", "solution", "glue:md")


def scan(text: str) -> tuple[int, list[tuple[str, int]]]:
    """The main line's word count, and each code cell as ``(tags, lines of code, longest line)``, of a MyST
    chapter."""
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":  # jupytext's front matter
        lines = lines[lines.index("---", 1) + 1:]
    words, cells, stack, gated = 0, [], [], False
    for line in lines:
        fence = FENCE.match(line.strip())
        if fence and (not stack or stack[-1][1] != "code-cell"):
            name = fence.group(2)
            if name == "solution-start":
                gated = True
            elif name == "solution-end":
                gated = False
            stack.append([fence.group(1), name, [], False])
            continue
        if stack and line.strip() == stack[-1][0]:
            _, name, body, _ = stack.pop()
            if name == "code-cell":
                tags = " ".join(l for l in body if l.startswith(":tags:"))
                code = [l for l in body if l.strip() and not l.startswith(":")]
                cells.append((tags, len(code), max(map(len, code), default=0)))
            continue
        if stack:
            stack[-1][2].append(line)
            if line.strip().startswith(":class:") and ("dropdown" in line or "toggle" in line):
                stack[-1][3] = True
        hidden = gated or any(name in HIDDEN_DIRECTIVES or collapsed for _, name, _, collapsed in stack)
        if not hidden and not line.startswith((":", "#")):
            words += len(line.split())
    return words, cells


def test_scan_counts_the_main_line_only():
    text = "\n".join([
        "---", "jupytext: x", "---", "# Title", "one two three", "```{code-cell} ipython3", ":tags: [hide-input]",
        "x = 1", "y = 2", "```", "```{exercise} E", ":label: e", "hidden words here", "```",
        "```{solution-start} e", ":class: dropdown", "```", "gated words", "```{solution-end}", "```",
        "```{admonition} Note", ":class: dropdown", "collapsed words", "```", "four five",
        "```{code-cell} ipython3", "z = 3", "```"])
    words, cells = scan(text)
    assert words == 5
    assert cells == [(":tags: [hide-input]", 2, 5), ("", 1, 5)]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_main_line_within_the_word_budget(chapter):
    words, _ = scan(chapter.read_text())
    assert words <= MAX_MAIN_WORDS, (
        f"{chapter.name}: {words} words of main line > {MAX_MAIN_WORDS}; move apparatus to the chapter's appendix "
        "page or into collapsed blocks")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_visible_cells_read_as_the_experiment(chapter):
    _, cells = scan(chapter.read_text())
    long = [n for tags, n, _ in cells if not HIDDEN_TAGS.search(tags) and n > MAX_VISIBLE_CELL_LINES]
    assert not long, f"{chapter.name}: visible cells of {long} lines > {MAX_VISIBLE_CELL_LINES}"
    wide = [width for tags, _, width in cells if not HIDDEN_TAGS.search(tags) and width > MAX_VISIBLE_LINE_CHARS]
    assert not wide, f"{chapter.name}: visible code lines of {wide} characters > {MAX_VISIBLE_LINE_CHARS}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_history_is_narrated(chapter):
    found = sorted({m.group(0).lower() for m in HISTORY.finditer(chapter.read_text())})
    assert not found, f"{chapter.name} narrates its history: {found}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_role_written_inside_backticks(chapter):
    found = RAW_ROLE.findall(chapter.read_text())
    assert not found, f"{chapter.name}: a role inside backticks renders raw: {found}"


def test_the_introduction_asks_both_questions():
    intro = (ROOT / "book" / "00_introduction.md").read_text().lower()
    for word in ("stacking", "jepa", "data2vec"):
        assert word in intro, f"the introduction never mentions {word}"


def test_the_synthesis_opens_with_the_answers():
    (synthesis,) = (ROOT / "book").glob("06_*.md")
    heads = [line for line in synthesis.read_text().split("\n") if line.startswith("## ")]
    assert heads and "answer" in heads[0].lower(), f"the synthesis opens with {heads[:1]}, not the answers"
