# One entry point for users and CI.
#   make book   create .venv, install everything, execute every chapter, build _build/html
#   make test   create or reuse .venv, install, run every check (what .ci/run calls)
#   make dist   build the wheel and the sdist into dist/ (for Colab before the repository is published)
#   make test-compat   the unit tests in throwaway venvs at the oldest Python with the minimum
#               dependencies and at the newest Python with the newest ones (.ci/compat.py; .ci/run calls it too)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NBTEST := .nbtest

.PHONY: install book test test-compat unit notebooks book-strict bench sync dist screenshots clean

# torch is pinned to the CPU wheel first: a plain "torch" requirement could pull a CUDA build of several GB.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install "torch==2.13.0"
	$(BIN)/python -m pip install -e ".[neural,book,test,cluster]"
	touch $@

install: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build .
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: unit notebooks book-strict

unit: $(STAMP)
	$(BIN)/python -m pytest tests

# nbval at LPBOOK_SCALE=smoke over the chapters converted by jupytext into a temporary folder.
notebooks: $(STAMP)
	rm -rf $(NBTEST) && mkdir -p $(NBTEST)
	for f in book/[0-9]*.md; do \
		$(BIN)/jupytext --quiet --to ipynb -o $(NBTEST)/$$(basename $${f%.md}).ipynb $$f || exit 1; \
	done
	LPBOOK_SCALE=smoke LPBOOK_CACHE=$(CURDIR)/$(NBTEST)/cache $(BIN)/python -m pytest --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=300 -p no:cacheprovider $(NBTEST)
	rm -rf $(NBTEST)

# Strict build with forced execution: the notebook cache does not notice changes
# in src/lpbook, and without -W a failing cell would still exit 0. The chapters'
# sweeps go to a fresh folder too, so every point is computed by the current library
# (`make book` keeps them in the user's cache, so that a rerun resumes).
book-strict: $(STAMP)
	rm -rf _build/.jupyter_cache _build/jupyter_execute _build/sweeps
	LPBOOK_CACHE=$(CURDIR)/_build/sweeps $(BIN)/jupyter-book build . -W -n --keep-going --all

# Needs no .venv: its own venvs install from PyPI through pip's cache (PIP_CACHE_DIR).
test-compat:
	$(PYTHON) .ci/compat.py

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# Re-pair every chapter's .ipynb (without outputs) with its .md after editing.
sync: $(STAMP)
	$(BIN)/jupytext --sync book/*.md

# The wheel and the sdist, with the venv's setuptools (no download of build requirements).
dist: $(STAMP)
	$(BIN)/python -m pip install -q "build>=1"
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	@ls dist

# Screenshots of every chapter's summary and exercises in the built book (needs headless Chromium):
# _build/screenshots/NN_name.png with the solutions collapsed, NN_name-open.png with them shown.
screenshots:
	tests/screenshots.sh _build/html _build/screenshots

clean:
	rm -rf _build $(NBTEST) dist
