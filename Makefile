# Two entry points for a newcomer: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint native-test clean diagram test-platform test-arm64 test-armhf test-gpiosim

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

# The pump on the Pi's own platform (README "Installing on a Raspberry Pi"); needs root.
# Not part of `make test`: a first run builds Debian arm64 and armhf roots and a small kernel (cached
# in ~/.cache/pca-platform), later runs take minutes. CI runs it after `make test`.
PLATFORM := $(VENV)/.platform
$(PLATFORM): $(STAMP)
	$(BIN)/python -m pip install --quiet "lgpio>=0.2.2.0"
	touch $(PLATFORM)

test-platform: $(PLATFORM)
	hardware/emulate/platform.sh

test-arm64:
	hardware/emulate/userland.sh arm64

test-armhf:
	hardware/emulate/userland.sh armhf

test-gpiosim: $(PLATFORM)
	hardware/emulate/gpiosim.sh

clean:
	rm -rf $(VENV) build *.egg-info
