# Two entry points for a newcomer: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint native-test clean diagram

# The native extension is built in place by the install: rebuild when its sources change.
$(STAMP): pyproject.toml setup.py $(wildcard native/*.c native/*.h native/*.pyx native/build.py)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23"
	PCA_NATIVE_WERROR=1 $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/pca sim

lint: $(STAMP)
	$(BIN)/ruff check pca tests
	$(BIN)/mypy

native-test: $(STAMP)
	@if [ -f native/Makefile ]; then $(MAKE) -C native test asan PYTHON=$(abspath $(BIN)/python); fi

test: $(STAMP) lint native-test
	$(BIN)/python -m pytest

# The state machine's picture, drawn from its transitions table (tests/test_diagram.py checks it).
diagram: $(STAMP)
	$(BIN)/python -m pca.controller.diagram > docs/state-machine.md

clean:
	rm -rf $(VENV) build *.egg-info
