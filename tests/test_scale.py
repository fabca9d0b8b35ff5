"""Tests of lpbook.scale: the one reader of LPBOOK_SCALE."""

from __future__ import annotations

import pytest

from lpbook import scale


def test_default_is_book(monkeypatch):
    monkeypatch.delenv("LPBOOK_SCALE", raising=False)
    assert scale.current() == "book"
    assert scale.settings("grammar").scale == "book"


@pytest.mark.parametrize("name", scale.SCALES)
def test_every_chapter_has_every_scale(monkeypatch, name):
    monkeypatch.setenv("LPBOOK_SCALE", name)
    for chapter in scale._CHAPTERS:
        assert scale.settings(chapter).scale == name
    assert all(set(c) == set(scale.SCALES) for c in scale._CHAPTERS.values())


def test_unknown_scale_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("LPBOOK_SCALE", "huge")
    with pytest.raises(ValueError, match="LPBOOK_SCALE must be one of smoke, book, full, got 'huge'"):
        scale.current()


def test_unknown_chapter():
    with pytest.raises(ValueError, match="chapter must be one of"):
        scale.settings("nope")


@pytest.mark.parametrize("chapter", sorted(scale._CHAPTERS))
def test_every_scale_of_a_chapter_has_the_same_settings(chapter):
    """A chapter reads the same names at every scale, so a name missing from one scale cannot pass unnoticed."""
    keys = {name: set(scale.settings(chapter, name).__dict__) for name in scale.SCALES}
    assert keys["smoke"] == keys["book"] == keys["full"], {name: sorted(k ^ keys["book"]) for name, k in keys.items()}
