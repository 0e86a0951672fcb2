# cugan-lightning — set-up and everyday commands. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The torch / torchvision pair that installs from the local wheel cache on the reference CPU machine.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: help install test test-all demo lint format clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e '.[dev,export,notebook]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with every extra (quick when already done)

test: $(STAMP)  ## run the fast test suite
	$(PY) -m pytest $(ARGS)

test-all: $(STAMP)  ## run every test, the slow ones included
	$(PY) -m pytest -m "not gpu" $(ARGS)

demo: $(STAMP)  ## train stage 1 then stage 2 on the embedded photos (CPU) and write the modulation figures
	$(PY) -m cugan_lightning.demo $(ARGS)

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP)  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

clean:  ## remove the virtual environment and run outputs
	rm -rf $(VENV) logs outputs multirun wandb
