# make demo  - set up .venv offline and mine the bundled sample with BM25 and dense MiniLM
# make test  - set up .venv and run the test suite (the command CI runs)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

$(BIN)/negmine: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch must come first: an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/negmine

setup: $(BIN)/negmine

demo: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/negmine demo --out negmine-demo

test: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 NEGMINE_PROGRESS=0 $(BIN)/python -m pytest -q -n 2

lint: setup
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/python -m mypy src

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/vs_sentence_transformers.py

clean:
	rm -rf $(VENV) negmine-demo
