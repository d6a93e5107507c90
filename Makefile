# The two commands of the README, on a fresh machine:
#   make demo   set up .venv and run the one-minute demo on bundled real data
#   make test   set up .venv and run the whole test suite and the linter
#
# torch is installed FIRST and pinned: a bare `torch` requirement can pull a multi-GB
# CUDA build. To take the CPU wheel from PyTorch's own index elsewhere, run e.g.
#   make demo TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.convexnn-installed

.PHONY: demo test lint setup clean

demo: $(STAMP)
	$(VENV)/bin/convexnn demo

test: $(STAMP)
	$(PY) -m pytest -q
	$(PY) -m ruff check .

lint: $(STAMP)
	$(PY) -m ruff check .

setup: $(STAMP)

# Idempotent: redone only when the stamp is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install "torch==$(TORCH_VERSION)" $(TORCH_PIP_ARGS)
	$(PIP) install -e ".[test]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
