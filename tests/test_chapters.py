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


# ------------------------------------------------------------------ the apparatus
NUMBERED = [c for c in CHAPTERS if c.name[:2] != "00"]
# A directive fence (``` or :::, three or more) with its name, argument and options.
DIRECTIVE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[a-z-]+)\}[ \t]*(?P<arg>[^\n]*)\n(?P<options>(?::[^\n]*\n)*)", re.M)


def directives(text: str, *names: str) -> list[re.Match]:
    return [d for d in DIRECTIVE.finditer(text) if d.group("name") in names]


def label(directive: re.Match) -> str | None:
    found = re.search(r"^:label:\s*(\S+)", directive.group("options"), re.M)
    return found.group(1) if found else None


def markdown(page: Path) -> str:
    """The text of a page's Markdown cells, without its code cells (whose comments start with #)."""
    return "\n".join(c.source for c in jupytext.read(page).cells if c.cell_type == "markdown")


def h2_sections(text: str) -> list[tuple[str, str]]:
    """The level-2 sections of a Markdown text as (title, body)."""
    parts = re.split(r"^## +(.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_exercises_each_with_a_solution(chapter):
    text = chapter.read_text()
    exercises = [label(d) for d in directives(text, "exercise", "exercise-start")]
    assert exercises, f"{chapter.name} has no exercise"
    assert None not in exercises, f"{chapter.name}: every exercise needs a :label: for its solution"
    solved = [d.group("arg").strip() for d in directives(text, "solution", "solution-start")]
    assert sorted(solved) == sorted(exercises), f"{chapter.name}: exercises {exercises}, solutions to {solved}"
    # The gated form: solution-start ... solution-end, never nested, so that the code cells between run.
    gates = [d.group("name") for d in directives(text, "solution-start", "solution-end", "exercise-start", "exercise-end")]
    pairs = [gates[i : i + 2] for i in range(0, len(gates), 2)]
    assert all(p in (["solution-start", "solution-end"], ["exercise-start", "exercise-end"]) for p in pairs), (
        f"{chapter.name}: unbalanced gated directives {gates}"
    )
    for d in directives(text, "solution", "solution-start"):
        assert re.search(r"^:class:.*\bdropdown\b", d.group("options"), re.M), (
            f"{chapter.name}: the solution to {d.group('arg').strip()} must be collapsed (:class: dropdown)"
        )
    # A code cell inside a plain solution directive is not executed: solutions with code use the gated form.
    for d in directives(text, "solution"):
        body = text[d.end() : text.index("\n" + d.group("fence") + "\n", d.end())]
        assert "{code-cell}" not in body, f"{chapter.name}: code in the solution to {d.group('arg').strip()} never runs"


def test_exercise_labels_are_unique_across_the_book():
    labels = [label(d) for c in CHAPTERS for d in directives(c.read_text(), "exercise", "exercise-start")]
    assert len(labels) == len(set(labels)), "two exercises share a label"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_opens_with_its_question_and_closes_with_a_summary(chapter):
    text = markdown(chapter)
    sections = h2_sections(text)
    opening = text[re.search(r"^# ", text, re.M).start() : re.search(r"^## ", text, re.M).start()]
    if sections and sections[0][0] == "The question":  # the introduction states it in a section of its own
        opening += sections[0][1]
    assert "?" in opening, f"{chapter.name} must open with its question"
    titles = [title for title, _ in sections]
    assert titles[-2:] == ["Summary", "Exercises"], f"{chapter.name} must close with a Summary, then Exercises"


def test_the_roadmap_lists_every_chapter_of_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    numbered = {}
    for entry in toc["chapters"]:
        path = ROOT / f"{entry['file']}.md"
        if re.match(r"\d\d_", path.name):
            title = re.search(r"^# +(.+)$", markdown(path), re.M).group(1).strip()
            numbered[int(path.name[:2])] = (path.name, title)
    intro = ROOT / f"{toc['root']}.md"
    roadmap = dict(h2_sections(markdown(intro)))["Roadmap"]
    items = {int(n): body for n, body in re.findall(r"^(\d+)\. +(.+?)(?=^\d+\. |\Z)", roadmap, re.M | re.S)}
    for number, (name, title) in numbered.items():
        assert number in items, f"the roadmap of {intro.name} has no item {number} for {name}"
        assert f"[{title}]({name})" in items[number], f"roadmap item {number} must link [{title}]({name})"
        assert "in preparation" not in items[number], f"roadmap item {number}: {name} exists"
    for number, body in items.items():
        if number not in numbered:
            assert "in preparation" in body and "](" not in body, f"roadmap item {number} names no chapter of _toc.yml"


def test_the_glossary_is_in_the_toc_before_the_references():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for entry in toc["chapters"]]
    assert "book/glossary" in files, "_toc.yml must list book/glossary"
    assert files.index("book/glossary") < files.index("book/references")


def glossary_terms() -> set[str]:
    text = (ROOT / "book" / "glossary.md").read_text()
    (block,) = directives(text, "glossary")
    body = text[block.end() : text.index("\n" + block.group("fence") + "\n", block.end())]
    return {line.strip() for line in body.splitlines() if line.strip() and not line.startswith((" ", ":"))}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_link_glossary_terms_that_exist(chapter):
    used = re.findall(r"\{term\}`([^`]+)`", chapter.read_text())
    assert used, f"{chapter.name} links no glossary term"
    targets = {re.sub(r"^.*<(.+)>$", r"\1", u).strip() for u in used}
    missing = targets - glossary_terms()
    assert not missing, f"{chapter.name} links terms missing from the glossary: {sorted(missing)}"


def install_cell(chapter) -> str:
    return jupytext.read(chapter).cells[0].source


#: What pip prints on stderr when an install fails, and the line of it that names the cause.
PIP_FAILURES = {
    "git-host": ("""\
  error: subprocess-exited-with-error

  × git clone --filter=blob:none --quiet https://github.com/lpbook/lpbook /tmp/pip-install-x/lpbook did not run successfully.
  │ exit code: 128
  ╰─> [1 lines of output]
      fatal: unable to access 'https://github.com/lpbook/lpbook/': Could not resolve host: github.com
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
error: subprocess-exited-with-error

× git clone --filter=blob:none --quiet https://github.com/lpbook/lpbook /tmp/pip-install-x/lpbook did not run successfully.
│ exit code: 128
╰─> See above for output.

note: This error originates from a subprocess, and is likely not a problem with pip.
""", "fatal: unable to access 'https://github.com/lpbook/lpbook/': Could not resolve host: github.com"),
    "git-repository": ("""\
  error: subprocess-exited-with-error

  × git clone --filter=blob:none --quiet https://github.com/lpbook/lpbook /tmp/pip-install-x/lpbook did not run successfully.
  │ exit code: 128
  ╰─> [2 lines of output]
      remote: Repository not found.
      fatal: repository 'https://github.com/lpbook/lpbook/' not found
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
""", "fatal: repository 'https://github.com/lpbook/lpbook/' not found"),
    "missing-package": ("""\
ERROR: Could not find a version that satisfies the requirement threadpoolctl>=3 (from lpbook) (from versions: none)
ERROR: No matching distribution found for threadpoolctl>=3
""", "ERROR: Could not find a version that satisfies the requirement threadpoolctl>=3 (from lpbook) (from versions: none)"),
    "offline-index": ("""\
WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by \
'NewConnectionError('<HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] Temporary \
failure in name resolution')': /simple/scipy/
ERROR: Could not find a version that satisfies the requirement scipy>=1.11.1 (from lpbook) (from versions: none)
ERROR: No matching distribution found for scipy>=1.11.1
""", "Temporary failure in name resolution"),
}


def test_every_chapter_has_the_same_install_cell():
    first = {chapter.name: install_cell(chapter) for chapter in CHAPTERS}
    assert len(set(first.values())) == 1, "the install cells differ: " + ", ".join(sorted(first))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
@pytest.mark.parametrize("failure", PIP_FAILURES, ids=str)
def test_install_cell_fails_with_a_clear_message_that_quotes_the_cause(chapter, failure, monkeypatch, tmp_path):
    import subprocess
    import sys

    calls = []
    stderr, cause = PIP_FAILURES[failure]

    def failing_pip(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 1, "", stderr)

    monkeypatch.setitem(sys.modules, "lpbook", None)  # `import lpbook` raises ImportError
    monkeypatch.setattr(subprocess, "run", failing_pip)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError) as info:
        exec(install_cell(chapter), {})
    message = str(info.value)
    assert f"lpbook @ git+{config()['repository']['url']}" in message
    assert cause in message and "originates from a subprocess" not in message, message
    assert "repository.url" in message and "make dist" in message and "upload" in message
    # With a wheel uploaded next to the notebook, the cell installs that wheel instead.
    (tmp_path / "lpbook-0.1.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(RuntimeError, match="lpbook-0.1.0-py3-none-any.whl"):
        exec(install_cell(chapter), {})
    assert calls[-1][-1] == "lpbook-0.1.0-py3-none-any.whl"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_keep_their_sweeps_in_their_cache_folder(chapter):
    text = chapter.read_text()
    assert "mkdtemp" not in text and "tempfile" not in text, "chapter sweeps go to lpbook.notebook.cache_dir"
    if "run_sweep" in text:
        assert re.search(r'workdir = cache_dir\("\w+"\)', text)


def test_cache_dir_is_one_folder_per_chapter(tmp_path, monkeypatch):
    import lpbook
    from lpbook.notebook import cache_dir

    monkeypatch.setenv("LPBOOK_CACHE", str(tmp_path / "cache"))
    folder = cache_dir("ilc")
    assert folder == tmp_path / "cache" / lpbook.__version__ / "ilc" and folder.is_dir()
    assert cache_dir("ilc") == folder and cache_dir("tokens") != folder  # a rerun finds the same folder
    monkeypatch.delenv("LPBOOK_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("sys.platform", "linux")
    assert cache_dir("ilc") == tmp_path / "xdg" / "lpbook" / lpbook.__version__ / "ilc"
    with pytest.raises(ValueError, match="chapter must be a non-empty name"):
        cache_dir("../escape")


def test_readme_python_snippets_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert any("np.array(sample.tokens.tolist())" in block for block in blocks)
    for block in blocks:
        exec(block, namespace)
    assert (tmp_path / "ilc.npz").exists()
