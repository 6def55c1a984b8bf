# Pitboss: `make demo` (fresh machine → running app) and `make test` (the whole suite).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test venv lint stress bench app clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	touch $(BENCH_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m app demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

stress: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(BENCH_STAMP)
	$(BIN)/python -m app bench --scale $(or $(SCALE),demo)

clean:
	rm -rf .pitboss
