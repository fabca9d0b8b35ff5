"""The built book as a reader sees it: no MyST role left unrendered in any chapter's HTML.

Runs on ``_build/html`` (or ``$LPBOOK_HTML``) after a build; ``make book-strict`` runs it right after building.
Without a build the tests skip and say so; a page older than its source is skipped as stale.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("LPBOOK_HTML", ROOT / "_build" / "html"))
SOURCES = sorted((ROOT / "book").glob("[0-9][0-9]_*.md")) + [ROOT / "book" / "glossary.md"]
#: A role as MyST writes it, e.g. {glue:text}, {glue:md}, {term}, {prf:ref}: rendered, none of them is left.
RAW_ROLE = re.compile(r"\{(glue(:[a-z]+)?|term|ref|numref|prf:ref|cite(:[a-z]+)?)\}")


class ReaderText(HTMLParser):
    """The text of a page outside code listings (``<pre>``), scripts and styles: the prose, tables and outputs."""

    SKIP = {"pre", "script", "style"}

    def __init__(self):
        super().__init__()
        self.depth, self.parts = 0, []

    def handle_starttag(self, tag, attrs):
        self.depth += tag in self.SKIP

    def handle_endtag(self, tag):
        self.depth -= tag in self.SKIP and self.depth > 0

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def reader_text(html: str) -> str:
    parser = ReaderText()
    parser.feed(html)
    return "".join(parser.parts)


def test_reader_text_keeps_prose_and_drops_code_listings():
    page = ('<p>A {glue:text} leak and <code>{term}</code> too</p><pre>glue("x", 1)  # {glue:text}`x`</pre>'
            "<script>var a = '{ref}';</script><p>after</p>")
    text = reader_text(page)
    assert [m.group(0) for m in RAW_ROLE.finditer(text)] == ["{glue:text}", "{term}"]
    assert "after" in text and "glue(" not in text


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_raw_role_in_the_built_page(source):
    page = HTML / "book" / f"{source.stem}.html"
    if not page.exists():
        pytest.skip(f"no built page {page}: build the book first (make book, or make book-strict)")
    if page.stat().st_mtime < source.stat().st_mtime:
        pytest.skip(f"{page} is older than {source.name}: rebuild the book")
    text = reader_text(page.read_text(encoding="utf-8"))
    leaks = [text[max(m.start() - 60, 0): m.end() + 40].replace("\n", " ") for m in RAW_ROLE.finditer(text)]
    assert not leaks, f"{page.name} shows raw roles: {leaks}"
