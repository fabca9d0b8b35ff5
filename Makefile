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

# Precomputed sweeps of Chapter 5, each SQLite file with its sidecar (lpbook sweep --record, see
# lpbook.results). The neural learners share one backbone and budget; RESULTS_DEVICE=cpu runs them
# on the CPU (days). A rerun resumes an interrupted sweep. tests/test_results.py checks every
# committed database against its sidecar.
RESULTS_DEVICE ?= cuda
RESULTS_WORKERS ?= 4
RESULTS_GRID := --v 16 --m 3 --s 2 --L 3 4 --P-range 1000 1000000 10 --seeds 4 --n-test 4000 \
	--workers $(RESULTS_WORKERS) --record --no-progress
RESULTS_NET := --option d_model=128 --option n_layers=4 --option n_heads=4 --option max_steps=20000 \
	--option batch_size=256 --option progress=false --option device=$(RESULTS_DEVICE)

results: $(STAMP)
	mkdir -p results
	$(BIN)/lpbook sweep --learner data2vec $(RESULTS_GRID) $(RESULTS_NET) --option K=2 --db results/data2vec.sqlite
	$(BIN)/lpbook sweep --learner masked-token $(RESULTS_GRID) $(RESULTS_NET) --db results/masked-token.sqlite
	$(BIN)/lpbook sweep --learner ilc $(RESULTS_GRID) --db results/ilc.sqlite
	$(BIN)/lpbook sweep --learner slc $(RESULTS_GRID) --option progress=false --option device=$(RESULTS_DEVICE) \
		--db results/slc.sqlite

# The small sweeps committed from a CPU run (about an hour of wall time on a shared CPU): Chapter 5 shows them.
CPU_GRID := --v 8 --m 2 --s 2 --L 3 --P 1000 16000 --seeds 1 --n-test 2000 --workers 1 --record --no-progress
CPU_NET := --option d_model=32 --option n_layers=2 --option n_heads=2 --option lr=0.003 --option max_steps=2000 \
	--option progress=false

results-cpu: $(STAMP)
	mkdir -p results
	$(BIN)/lpbook sweep --learner data2vec $(CPU_GRID) $(CPU_NET) --db results/data2vec-cpu.sqlite
	$(BIN)/lpbook sweep --learner masked-token $(CPU_GRID) $(CPU_NET) --db results/masked-token-cpu.sqlite
	$(BIN)/lpbook sweep --learner ilc $(CPU_GRID) --db results/ilc-cpu.sqlite

# Chapter 4's grid at v = 16 (L = 3, 4, 5; m = 2, 3, then 4; five seeds), SLC with 400 steps per stage and 4
# restarts, and ILC on the same points (about 40 and 25 minutes on one core); Chapter 4 reads them.
SLC_GRID := --v 16 --m 2 3 --s 2 --L 3 4 5 --P-range-scaled 0.25 16 8 --scale 'v*m**3' --seeds 5 --n-test 4000 \
	--workers 1 --record --no-progress
SLC_GRID_M4 := $(subst --m 2 3,--m 4,$(SLC_GRID))

results-slc: $(STAMP)
	mkdir -p results
	$(BIN)/lpbook sweep --learner slc $(SLC_GRID) --option steps=400 --option restarts=4 --option progress=false \
		--db results/slc-v16.sqlite
	$(BIN)/lpbook sweep --learner ilc $(SLC_GRID) --db results/ilc-v16.sqlite
	$(BIN)/lpbook sweep --learner slc $(SLC_GRID_M4) --option steps=400 --option restarts=4 --option progress=false \
		--db results/slc-v16-m4.sqlite
	$(BIN)/lpbook sweep --learner ilc $(SLC_GRID_M4) --db results/ilc-v16-m4.sqlite

# Chapter 3's precomputed ILC sweeps (about 20 minutes on one core): depth to L = 8, and the
# exponent in m at v = 16, 32, 64 on the grammars of lpbook.theory's prediction (seeds 0-9); Chapter 2's
# TokenClustering exponents at v = 32.
results-ilc: $(STAMP)
	mkdir -p results
	$(BIN)/lpbook sweep --learner ilc --v 16 --m 3 --s 2 --L 3 4 5 6 7 8 --P-range 288 86400 20 --seeds 16 \
		--n-test 2000 --workers 1 --record --no-progress --db results/ilc-depth.sqlite
	$(BIN)/lpbook sweep --learner ilc --v 16 32 64 --m 2 3 4 6 8 12 --s 2 --L 3 --P-range-scaled 1 256 20 \
		--scale 'v*m**2' --seeds 10 --n-test 2000 --workers 1 --record --no-progress --db results/ilc-exponents.sqlite
	$(BIN)/lpbook sweep --learner token-clustering --v 32 --m 2 3 4 6 8 --s 2 --L 3 --P-range-scaled 1 1024 20 \
		--scale 'v*m**2' --seeds 8 --n-test 2000 --workers 1 --record --no-progress --db results/tc-exponents.sqlite

# The out-of-sample test of lpbook.theory's prediction of P* (Chapter 3's appendix, Chapter 2): ILC at L = 3 and 4
# and TokenClustering at L = 3 on alphabets v = 24 and 48, which no other committed sweep holds and no fit of the
# model's constants sees (about 40 minutes on one core).
PSTAR_TEST := --v 24 48 --m 3 5 7 --s 2 --seeds 8 --n-test 2000 --workers 1 --record --no-progress

results-pstar-test: $(STAMP)
	mkdir -p results
	$(BIN)/lpbook sweep --learner ilc $(PSTAR_TEST) --L 3 --P-range-scaled 1 256 20 --scale 'v*m**2' \
		--db results/pstar-test-ilc-L3.sqlite
	$(BIN)/lpbook sweep --learner ilc $(PSTAR_TEST) --L 4 --P-range-scaled 1 256 20 --scale 'v*m**2' \
		--db results/pstar-test-ilc-L4.sqlite
	$(BIN)/lpbook sweep --learner token-clustering $(PSTAR_TEST) --L 3 --P-range-scaled 1 1024 20 --scale 'v*m**2' \
		--db results/pstar-test-tc.sqlite

# Chapter 2's masked-token networks trained past the chapter's budget, on the CPU (minutes each, one thread):
# the chapter loads each one and measures it against the Bayes floor. lpbook fit --record writes the sidecar;
# tests/test_results.py checks every committed network against it. Our recipe (three blocks, batch 128, a cosine
# schedule over 30,000 steps) is the one that left the plateau at the floor below the root in our CPU runs.
MLM_LONG := --option d_model=32 --option n_heads=2 --option n_layers=3 --option batch_size=128 --option lr=0.003 \
	--option schedule=cosine --option warmup=300 --option max_steps=30000 --option eval_every=500 \
	--option patience=10 --option progress=false

# Chapter 5's data2vec networks, the same way (three blocks, batch 128, 8,000 steps, a longer token probe: its best step came near the end of 3,000).
D2V_LONG := --option d_model=32 --option n_heads=2 --option n_layers=3 --option batch_size=128 --option lr=0.003 \
	--option max_steps=8000 --option probe_steps=6000 --option n_init=2 --option progress=false
# Chapter 5's controlled pair: data2vec on Chapter 2's grammar and strings (v = 16, m = 3, L = 3, seed 0) with
# the masked-token networks' recipe (three blocks, batch 128, the same cosine schedule over 30,000 steps, all of them:
# data2vec's loss is no stopping criterion); only the target differs. The two data2vec-hidden networks are our
# variant whose teacher reads only the tokens hidden from the student (Chapter 5, "targets that see the node").
D2V_MATCHED := --option d_model=32 --option n_heads=2 --option n_layers=3 --option batch_size=128 --option lr=0.003 \
	--option schedule=cosine --option warmup=300 --option max_steps=30000 --option probe_steps=6000 --option n_init=2 \
	--option progress=false

results-networks: $(STAMP)
	mkdir -p results/networks
	for P in 1000 4000 16000; do \
		$(BIN)/lpbook fit --learner masked-token --v 16 --m 3 --s 2 --L 3 --P $$P --seed 0 $(MLM_LONG) \
			--out results/networks/masked-token-v16-m3-L3-P$$P-seed0.npz --record || exit 1; \
	done
	for LP in "3 1000" "3 4000" "4 4000"; do \
		set -- $$LP; \
		$(BIN)/lpbook fit --learner data2vec --v 8 --m 2 --s 2 --L $$1 --P $$2 --seed 0 $(D2V_LONG) \
			--out results/networks/data2vec-v8-m2-L$$1-P$$2-seed0.npz --record || exit 1; \
	done
	for P in 16000 4000 1000; do \
		$(BIN)/lpbook fit --learner data2vec --v 16 --m 3 --s 2 --L 3 --P $$P --seed 0 $(D2V_MATCHED) \
			--out results/networks/data2vec-v16-m3-L3-P$$P-seed0.npz --record || exit 1; \
	done
	$(BIN)/lpbook fit --learner data2vec --v 8 --m 2 --s 2 --L 3 --P 4000 --seed 0 $(D2V_LONG) \
		--option teacher_input=hidden --out results/networks/data2vec-hidden-v8-m2-L3-P4000-seed0.npz --record
	$(BIN)/lpbook fit --learner data2vec --v 16 --m 3 --s 2 --L 3 --P 16000 --seed 0 $(D2V_MATCHED) \
		--option teacher_input=hidden --out results/networks/data2vec-hidden-v16-m3-L3-P16000-seed0.npz --record

# The depth experiment of Chapters 2, 5 and 6: every learner at L = 3 and 4 on the same grammars (v = 16, m = 3,
# seeds 0, 1, ...) and the same strings. ILC and TokenClustering sweep the whole grid (minutes); the masked-token
# networks are fitted at the sizes that bracket the top level's P* (seeds 0 and 1; the recipe of results-networks,
# with twice the steps at L = 4, whose top level needs more). A rerun skips every network already saved, so the
# target resumes after an interruption; each fit takes 5-20 minutes on one core.
DEPTH_FAMILY := --v 16 --m 3 --s 2
DEPTH_SWEEP := $(DEPTH_FAMILY) --L 3 4 --P 125 250 500 1000 2000 4000 8000 16000 32000 64000 128000 256000 \
	--seeds 8 --n-test 2000 --workers 1 --record --no-progress
MLM_DEPTH_L4 := $(subst max_steps=30000,max_steps=60000,$(MLM_LONG))
# L, P, seed of each masked-token network, in the order they are fitted.
DEPTH_MLM := "3 2000 0" "3 8000 0" "3 2000 1" "3 4000 1" "3 8000 1" "3 16000 1" \
	"4 32000 0" "4 16000 0" "4 8000 0" "4 64000 1" "4 32000 1" "4 16000 1" "4 8000 1"

results-depth: $(STAMP)
	mkdir -p results/networks
	$(BIN)/lpbook sweep --learner ilc $(DEPTH_SWEEP) --db results/ilc-depth-pair.sqlite
	$(BIN)/lpbook sweep --learner token-clustering $(DEPTH_SWEEP) --db results/tc-depth-pair.sqlite
	for job in $(DEPTH_MLM); do \
		set -- $$job; out=results/networks/masked-token-v16-m3-L$$1-P$$2-seed$$3.npz; \
		if [ $$1 = 4 ]; then recipe="$(MLM_DEPTH_L4)"; else recipe="$(MLM_LONG)"; fi; \
		test -e $$out || $(BIN)/lpbook fit --learner masked-token $(DEPTH_FAMILY) --L $$1 --P $$2 --seed $$3 $$recipe \
			--out $$out --record || exit 1; \
	done

# A bounded search for a data2vec recipe that converges (token-probe excess within bp.CONVERGED_EXCESS) and reads every
# level at 0.9 or more, on Chapter 2's grammar and strings at L = 3, P = 16,000 (Chapter 5 shows it). Each candidate
# changes the recipe of results-networks' controlled pair (D2V_MATCHED) in one or two options: every block in the
# target (K = 3), the teacher's input, its EMA end, the mask range, the width, the budget. Networks go to
# results/search, apart from those the chapters show; a rerun skips the saved ones.
D2V_SEARCH := "K3-all|--option K=3" "K3-hidden|--option K=3 --option teacher_input=hidden" \
	"K3-hidden-ema9999|--option K=3 --option teacher_input=hidden --option ema=[0.99,0.9999]" \
	"K3-all-ema9999|--option K=3 --option ema=[0.99,0.9999]" \
	"K3-hidden-mask40|--option K=3 --option teacher_input=hidden --option mask_range=[0.4,0.95]" \
	"K3-all-60k|--option K=3 --option max_steps=60000" \
	"K3-hidden-w64|--option K=3 --option teacher_input=hidden --option d_model=64 --option n_heads=4"

D2V_SEARCH_BASE := --option n_layers=3 --option batch_size=128 --option lr=0.003 --option schedule=cosine \
	--option warmup=300 --option probe_steps=6000 --option n_init=2 --option progress=false

results-d2v-search: $(STAMP)
	mkdir -p results/search
	for job in $(D2V_SEARCH); do \
		name=$${job%%|*}; extra=$${job#*|}; out=results/search/data2vec-$$name-v16-m3-L3-P16000-seed0.npz; \
		test -e $$out || $(BIN)/lpbook fit --learner data2vec --v 16 --m 3 --s 2 --L 3 --P 16000 --seed 0 \
			$(D2V_SEARCH_BASE) \
			$$(case "$$extra" in *max_steps*) ;; *) echo --option max_steps=30000;; esac) \
			$$(case "$$extra" in *d_model*) ;; *) echo --option d_model=32 --option n_heads=2;; esac) \
			$$extra --out $$out --record || exit 1; \
	done

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
