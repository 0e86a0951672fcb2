# cugan-lightning — set-up and everyday commands. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The torch / torchvision pair that installs from the local wheel cache on the reference CPU machine.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: help install test test-fast gpu-check demo bench results table2 lint format clean

help:  ## list the commands
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

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

gpu-check: $(STAMP)  ## on a CUDA machine: the `gpu` tests, then the GPU benchmark (a few minutes; writes gpu.json)
	$(PY) -m pytest -m gpu $(ARGS)
	$(PY) benchmarks/gpu.py --out gpu.json

demo: $(STAMP)  ## train stage 1 then stage 2 on the embedded photos (CPU) and write the modulation figures
	$(VENV)/bin/cugan-demo $(ARGS)

bench: $(STAMP)  ## every speed comparison on this machine, one table of ratios (about 2 minutes on 2 CPU cores)
	$(PY) benchmarks/bench_all.py $(ARGS)

# The tables of docs/results.md, one command each (the test sets first: cugan-prepare cbsd68 live1 --root $(DATA)).
DATA ?= data
EVAL := $(VENV)/bin/cugan-evaluate metrics=[psnr,psnr_y,ssim]
ZOO := models.cunet=zoo:cunet-blur-noise
T2 := logs/table2
TRAIN := $(VENV)/bin/cugan-train preset=cpu_table2 paths.data_dir=$(DATA) paths.log_dir=$(T2)
CHEAP := models.nlm=classical:nlm models.wiener=classical:wiener models.rl=classical:rl

results: $(STAMP)  ## the measured tables of docs/results.md and docs/estimation.md (about 2.5 hours on 2 CPU cores)
	$(EVAL) task_name=results_cbsd68 data.test_dir=$(DATA)/CBSD68/original_png $(ZOO) $(CHEAP)
	$(EVAL) task_name=results_live1 data.test_dir=$(DATA)/LIVE1 $(ZOO) $(CHEAP)
	$(EVAL) task_name=results_cbsd68_bm3d data.test_dir=$(DATA)/CBSD68/original_png $(ZOO) \
	  models.bm3d=classical:bm3d "settings=[b0_n30,b0_n50]"
	$(EVAL) task_name=results_cbsd68_standard data.test_dir=$(DATA)/CBSD68/original_png protocol=standard $(ZOO) \
	  models.bm3d=classical:bm3d "settings=[b0_n15,b0_n25,b0_n50]"
	$(EVAL) task_name=estimation_cbsd68 data.test_dir=$(DATA)/CBSD68/original_png $(ZOO) blind=auto
	$(EVAL) task_name=estimation_live1 data.test_dir=$(DATA)/LIVE1 $(ZOO) blind=auto
	$(EVAL) task_name=estimation_jpeg_cbsd68 data.test_dir=$(DATA)/CBSD68/original_png \
	  blind=zoo:estimator-blur-noise-jpeg settings=paper_jpeg
	$(EVAL) task_name=estimation_jpeg_live1 data.test_dir=$(DATA)/LIVE1 blind=zoo:estimator-blur-noise-jpeg settings=paper_jpeg

table2: $(STAMP)  ## the paper's Table 2 in miniature: the CUnet, ten per-level Unets and 1-2 scale CUnets at one CPU budget
	$(TRAIN) experiment=cunet_mse
	$(TRAIN) ablation=unet_levels
	$(TRAIN) experiment=cunet_mse model/generator=cunet_2scale "model.net_g.channels=[16,32]" task_name=table2_scales2
	$(TRAIN) experiment=cunet_mse model/generator=cunet_1scale "model.net_g.channels=[16]" task_name=table2_scales1
	$(EVAL) task_name=results_table2 data.test_dir=$(DATA)/CBSD68/original_png baselines=$$(ls -d $(T2)/ablation_unet_levels/multiruns/* | tail -1) \
	  models.cunet=$$(ls $(T2)/cunet_mse/runs/*/checkpoints/best.ckpt | tail -1) \
	  +models.scales2=$$(ls $(T2)/table2_scales2/runs/*/checkpoints/best.ckpt | tail -1) \
	  +models.scales1=$$(ls $(T2)/table2_scales1/runs/*/checkpoints/best.ckpt | tail -1)

lint: $(STAMP)  ## ruff lint and format check
	$(VENV)/bin/ruff check src tests benchmarks setup.py
	$(VENV)/bin/ruff format --check src tests benchmarks setup.py

format: $(STAMP)  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests benchmarks setup.py
	$(VENV)/bin/ruff format src tests benchmarks setup.py

clean:  ## remove the virtual environment and run outputs
	rm -rf $(VENV) logs outputs multirun wandb build dist
