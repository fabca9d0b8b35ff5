"""Structural checks of the book: chapter pairs, the install cell, the table of contents.

Executing the chapters is not done here: `make test` runs nbval over them at
LPBOOK_SCALE=smoke and builds the book strictly at the default scale.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
PAGES = sorted((ROOT / "book").glob("*.md"))  # chapters and the other pages: all open in Colab


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def test_there_are_chapters():
    assert [c.name for c in CHAPTERS[:2]] == ["00_introduction.md", "01_grammar.md"]


def test_toc_lists_every_chapter_and_only_existing_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [entry["file"] for entry in toc["chapters"]]
    for f in files:
        assert (ROOT / f"{f}.md").exists(), f"_toc.yml lists {f}, which does not exist"
    listed = {ROOT / f"{f}.md" for f in files}
    assert set(CHAPTERS) <= listed, "a chapter is missing from _toc.yml"


@pytest.mark.parametrize("chapter", PAGES, ids=lambda p: p.stem)
def test_notebook_pair_matches_and_has_no_outputs(chapter):
    paired = chapter.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} is missing: run `make sync`"
    from_md = jupytext.read(chapter)
    committed = nbformat.read(paired, as_version=4)

    def cells(nb):
        return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]

    assert cells(committed) == cells(from_md), f"{paired.name} differs from {chapter.name}: run `make sync`"
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{paired.name} holds outputs"
    formats = from_md.metadata.get("jupytext", {}).get("formats", "")
    assert set(formats.split(",")) == {"ipynb", "md:myst"}, f"{chapter.name} is not paired with its .ipynb"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_first_cell_installs_lpbook_from_the_repository(chapter):
    first = jupytext.read(chapter).cells[0]
    assert first.cell_type == "code"
    assert "remove-cell" in first.metadata.get("tags", [])
    assert "import lpbook" in first.source and "except ImportError" in first.source
    urls = re.findall(r"https://[^\s\"']+", first.source)
    assert urls == [config()["repository"]["url"]], "the install cell must use _config.yml's repository url"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_read_the_scale_through_lpbook(chapter):
    text = chapter.read_text()
    assert "LPBOOK_SCALE\"" not in text and "os.environ" not in text, (
        "chapters get their parameters from lpbook.scale.settings, not from the environment"
    )
