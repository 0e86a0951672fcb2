# cugan-lightning — set-up and everyday commands. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The torch / torchvision pair that installs from the local wheel cache on the reference CPU machine.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: help install test test-fast demo bench lint format clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools>=77"
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e '.[dev,export,notebook,cluster,classical,app]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with every extra (quick when already done)

test: $(STAMP)  ## run every test (what CI runs; `gpu` tests skip without CUDA)
	$(PY) -m pytest $(ARGS)

test-fast: $(STAMP)  ## the everyday loop: every test but the `slow` and `gpu` ones
	$(PY) -m pytest -m "not slow and not gpu" $(ARGS)

demo: $(STAMP)  ## train stage 1 then stage 2 on the embedded photos (CPU) and write the modulation figures
	$(VENV)/bin/cugan-demo $(ARGS)

bench: $(STAMP)  ## every speed comparison on this machine, one table of ratios (about 2 minutes on 2 CPU cores)
	$(PY) benchmarks/bench_all.py $(ARGS)

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check src tests benchmarks setup.py
	$(VENV)/bin/ruff format --check src tests benchmarks setup.py

format: $(STAMP)  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests benchmarks setup.py
	$(VENV)/bin/ruff format src tests benchmarks setup.py

clean:  ## remove the virtual environment and run outputs
	rm -rf $(VENV) logs outputs multirun wandb build dist
