# Two commands do all the set-up: `make demo` and `make test`. Both are idempotent:
# the venv and installs are redone only when pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# The CPU build first: with it in place, the bounded torch requirement installs nothing more.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

demo: install
	$(BIN)/feedback-nlp demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks datasets

typecheck: install
	$(BIN)/mypy src

bench: install
	$(BIN)/python benchmarks/embed_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache build dist
