# One entry point for users and CI.
#   make book   create .venv, install everything, execute every chapter, build _build/html
#   make test   create or reuse .venv, install, run every check (what .ci/run calls)
#   make dist   build the wheel and the sdist into dist/ (for Colab before the repository is published)
#   make test-compat   the unit tests in throwaway venvs at the oldest Python with the minimum
#               dependencies and at the newest Python with the newest ones (.ci/compat.py; .ci/run calls it too)
#   make results  recompute the precomputed sweeps under results/ (hours: meant for a GPU machine)
#   make results-cpu  the smaller precomputed sweeps of Chapter 5 (about an hour on a CPU)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NBTEST := .nbtest

.PHONY: install book test test-compat unit notebooks book-strict bench sync dist screenshots clean results results-cpu results-networks results-slc results-ilc results-pstar-test results-depth results-d2v-search

# torch is pinned first (torch==2.13.0), so that the package's loose bound installs nothing more. From a plain
# index such as PyPI that pin is the CUDA build on Linux (with its nvidia-* packages, about 2.5 GiB); set
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu (PyTorch's CPU wheel index) to install the CPU build.
TORCH_INDEX_URL ?=

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install "torch==2.13.0" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
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
# in src/lpbook, and without -W a failing cell would still exit 0. Then the built pages are
# checked for roles that did not render (tests/test_built_book.py). The chapters'
# sweeps go to a fresh folder too, so every point is computed by the current library
# (`make book` keeps them in the user's cache, so that a rerun resumes).
book-strict: $(STAMP)
	rm -rf _build/.jupyter_cache _build/jupyter_execute _build/sweeps
	LPBOOK_CACHE=$(CURDIR)/_build/sweeps $(BIN)/jupyter-book build . -W -n --keep-going --all
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_built_book.py

# Needs no .venv: its own venvs install from PyPI through pip's cache (PIP_CACHE_DIR).
test-compat:
	$(PYTHON) .ci/compat.py

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

# The depth experiment extended on a GPU: data2vec, the masked-token network, ILC and SLC at L = 3, 4 and 5 on the
# depth pair's grammars (lpbook.experiments: gpu-data2vec, gpu-masked-token, gpu-ilc, gpu-slc), each SQLite file with
# its sidecar. RESULTS_DEVICE=cpu runs them on the CPU (days). A rerun resumes an interrupted sweep.
RESULTS_DEVICE ?= cuda
RESULTS_WORKERS ?= 4

results: $(STAMP)
	mkdir -p results
	for name in gpu-data2vec gpu-masked-token gpu-slc; do \
		$(BIN)/lpbook sweep --spec $$name --workers $(RESULTS_WORKERS) --record --no-progress \
			--option device=$(RESULTS_DEVICE) --db results/$$name.sqlite || exit 1; \
	done
	$(BIN)/lpbook sweep --spec gpu-ilc --workers $(RESULTS_WORKERS) --record --no-progress --db results/gpu-ilc.sqlite

# The sweeps and networks committed under results/, each defined once in lpbook.experiments (SWEEPS, NETWORKS;
# tests/test_experiments.py checks each against what results/ holds). `lpbook sweep --spec NAME --record` runs (or
# resumes) a sweep and writes its sidecar; `lpbook fit --spec NAME --record` fits the networks of a set that
# results/ lacks, so a rerun skips the saved ones, and goes on with an interrupted one from its checkpoint (OUT.checkpoint).
# tests/test_results.py checks every committed file against its sidecar.
SPEC_SWEEP = $(BIN)/lpbook sweep --workers 1 --record --no-progress --spec

# Chapter 5's small sweeps from a CPU run (about an hour of wall time on a shared CPU).
results-cpu: $(STAMP)
	mkdir -p results
	for name in data2vec-cpu masked-token-cpu ilc-cpu; do $(SPEC_SWEEP) $$name --db results/$$name.sqlite || exit 1; done

# Chapter 4's grid at v = 16 (L = 3, 4, 5; m = 2, 3, then 4; five seeds), SLC with 400 steps per stage and 4
# restarts, and ILC on the same points (about 40 and 25 minutes on one core); Chapter 4 reads them. Its appendix
# reads SLC without the place term of its loss (place_weight=0) at m = 2 (about 20 minutes).
results-slc: $(STAMP)
	mkdir -p results
	for name in slc-v16 ilc-v16 slc-v16-m4 ilc-v16-m4 slc-v16-no-place; do $(SPEC_SWEEP) $$name --db results/$$name.sqlite || exit 1; done

# Chapter 3's precomputed ILC sweeps (about 20 minutes on one core): depth to L = 8, and the exponent in m at
# v = 16, 32, 64 on the grammars of lpbook.theory's prediction; Chapter 2's TokenClustering exponents at v = 32.
results-ilc: $(STAMP)
	mkdir -p results
	for name in ilc-depth ilc-exponents tc-exponents; do $(SPEC_SWEEP) $$name --db results/$$name.sqlite || exit 1; done

# The out-of-sample test of lpbook.theory's prediction of P* (Chapter 3's appendix, Chapter 2): ILC at L = 3 and 4
# and TokenClustering at L = 3 on alphabets v = 24 and 48, which no other committed sweep holds and no fit of the
# model's constants sees (about 40 minutes on one core).
results-pstar-test: $(STAMP)
	mkdir -p results
	for name in pstar-test-ilc-L3 pstar-test-ilc-L4 pstar-test-tc; do \
		$(SPEC_SWEEP) $$name --db results/$$name.sqlite || exit 1; \
	done

# Chapter 2's masked-token networks and Chapter 5's data2vec networks, trained past the chapters' budget on the
# CPU (minutes each, one thread): the chapters load each one and measure it against the Bayes floor. The recipes
# (lpbook.experiments) are the ones that left the plateau at the floor below the root in our CPU runs.
results-networks: $(STAMP)
	mkdir -p results/networks
	$(BIN)/lpbook fit --spec networks --record

# The depth experiment of Chapters 2, 5 and 6: every learner at L = 3 and 4 on the same grammars (v = 16, m = 3,
# seeds 0, 1, ...) and the same strings. ILC and TokenClustering sweep the whole grid (minutes), SLC too (about an hour); the masked-token
# networks are fitted at the sizes that bracket the top level's P* (seeds 0 and 1; the recipe of results-networks,
# with twice the steps at L = 4, whose top level needs more); each fit takes 5-20 minutes on one core. Larger
# networks at L = 4 (mlm-depth-width, mlm-depth-blocks) take 30 minutes to 2 hours; depth-networks-w64 repeats the
# depth set with twice the width and a fourth block (15 minutes a fit at L = 3, 2 hours at L = 4, with four times the steps). The data2vec
# networks use the recipe of results-d2v-search that converges, twice the steps at L = 4 (sets d2v-depth-seed0 and
# d2v-depth-seed1, one per grammar: run them side by side).
results-depth: $(STAMP)
	mkdir -p results/networks
	for name in ilc-depth-pair tc-depth-pair slc-depth-pair; do $(SPEC_SWEEP) $$name --db results/$$name.sqlite || exit 1; done
	$(BIN)/lpbook fit --spec depth-networks --record
	$(BIN)/lpbook fit --spec mlm-depth-width --record
	$(BIN)/lpbook fit --spec mlm-depth-blocks --record
	$(BIN)/lpbook fit --spec depth-networks-w64 --record
	for name in d2v-depth-seed0 d2v-depth-seed1 d2v-depth-steps d2v-depth-blocks d2v-depth-axes; do \
		$(BIN)/lpbook fit --spec $$name --record || exit 1; done

# A bounded search for a data2vec recipe that converges (token-probe excess within bp.CONVERGED_EXCESS) and reads every
# level at 0.9 or more, on Chapter 2's grammar and strings at L = 3, P = 16,000 (Chapter 5 shows it). Each candidate
# changes the recipe of results-networks' controlled pair in one or two options: every block in the target (K = 3),
# the teacher's input, its EMA end, the mask range, the width, the budget. Networks go to results/search, apart from
# those the chapters show.
results-d2v-search: $(STAMP)
	mkdir -p results/search
	$(BIN)/lpbook fit --spec d2v-search --record

# Re-pair every chapter's .ipynb (without outputs) with its .md after editing.
sync: $(STAMP)
	$(BIN)/jupytext --sync book/*.md

# The wheel and the sdist, with the venv's setuptools (no download of build requirements). Byte-compiling
# stays on (PYTHONDONTWRITEBYTECODE unset), as setuptools expects: it warns otherwise; the wheel holds no .pyc.
dist: $(STAMP)
	$(BIN)/python -m pip install -q "build>=1"
	rm -rf dist
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m build --no-isolation --outdir dist .
	@ls dist

# Screenshots of every chapter's summary and exercises in the built book (needs headless Chromium):
# _build/screenshots/NN_name.png with the solutions collapsed, NN_name-open.png with them shown.
screenshots:
	tests/screenshots.sh _build/html _build/screenshots

clean:
	rm -rf _build $(NBTEST) dist
