# Set-up and entry points. Each target creates .venv if missing and installs what it needs.
# TORCH_SPEC is installed first so that pip never pulls a multi-GB CUDA build on a CPU machine;
# GPU users override it, e.g.  make demo TORCH_SPEC="torch==2.13.0 --index-url <your CUDA index>".
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.neuronoverlap-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test test-fast test-tl3 install lint bench clean

LOCK := requirements/lock.txt

$(STAMP): pyproject.toml $(LOCK)
	@echo "neuronoverlap set-up: .venv with $(TORCH_SPEC) and the locked libraries ($(LOCK)); about 2 minutes, 2.7 GB"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[1/3] pip and $(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet --upgrade 'pip==26.3'
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	@echo "[2/3] the toolkit and the locked libraries (transformers, transformer-lens, h5py, ray, ...)"
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,bench,ray,frames,mechanism]'
	@echo "[3/3] checking the installed versions against $(LOCK)"
	$(BIN)/python -m neuronoverlap.versions --check-lock $(LOCK)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/neuronoverlap demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The real TransformerLens 3.x (HookedTransformer) in a second environment: the model, recorder
# and probe tests, on a HookedTransformer built offline from a tiny LLaMA config.
TL3_VENV := .venv-tl3
TL3_LOCK := requirements/lock-tl3.txt
TL3_STAMP := $(TL3_VENV)/.neuronoverlap-installed
TL3_TESTS := tests/test_transformer_lens3.py tests/test_interventions_tl3.py tests/test_models.py tests/test_recording_correctness.py tests/test_store.py

$(TL3_STAMP): pyproject.toml $(TL3_LOCK)
	@echo "neuronoverlap set-up: $(TL3_VENV) with transformer-lens 3.9.0 ($(TL3_LOCK)); about 2 minutes"
	test -x $(TL3_VENV)/bin/python || $(PYTHON) -m venv $(TL3_VENV)
	$(TL3_VENV)/bin/python -m pip install --quiet --upgrade 'pip==26.3'
	$(TL3_VENV)/bin/python -m pip install --quiet $(TORCH_SPEC)
	$(TL3_VENV)/bin/python -m pip install --quiet -r $(TL3_LOCK)
	$(TL3_VENV)/bin/python -m pip install --quiet --no-deps -e .
	$(TL3_VENV)/bin/python -m neuronoverlap.versions --check-lock $(TL3_LOCK)
	touch $(TL3_STAMP)

test-tl3: $(TL3_STAMP)
	$(TL3_VENV)/bin/python -m pytest -q -m "not slow" -p no:cacheprovider $(TL3_TESTS)

# One texture: ruff's linter and formatter (line length 110, pyproject.toml); CI runs this.
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	for f in bench/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(TL3_VENV) build dist src/*.egg-info .pytest_cache
