# vfr-bench: the two commands that matter are `make bench` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
VFR := $(VENV)/bin/vfr-bench
METHOD ?=
SPLIT ?= sample
DEVICES ?= 1
NODES ?= 1
OUT ?= results
ARGS ?=

.PHONY: install bench test test-fast perf clean weights

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23" "setuptools>=64" wheel
	# torch/torchvision first: pip takes the local wheels where the machine caps them
	$(PY) -m pip install -q torch torchvision
	# the iqa extra (pyiqa: MUSIQ, CLIP-IQA, MANIQA) is optional for users, installed here so its tests run
	$(PY) -m pip install -q -e ".[test,iqa]"
	touch $@

install: $(VENV)/.installed

bench: install
	$(VFR) bench --method "$(if $(METHOD),$(METHOD),all)" --split $(SPLIT) --devices $(DEVICES) --num-nodes $(NODES) --out $(OUT) $(ARGS)

# every checkpoint the default methods and metrics need, from their official sources (prints
# files, sizes and licenses first; never prompts); `vfr-bench weights fetch --all` for every entry
weights: install
	$(VFR) weights fetch --for all $(ARGS)

test: install
	$(PY) -m pytest -q $(ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not conformance and not slow" $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# frames/s, peak memory and time split per method and metric, plus the naive/reference ratios
# (results/perf.json); `make perf DEVICE=cuda` on a GPU. perf-metrics: the metric part only.
DEVICE ?= cpu
perf: install
	$(VFR) perf --device $(DEVICE) --out $(OUT)/perf.json $(ARGS)

.PHONY: perf-metrics
perf-metrics: install
	$(VFR) perf --device $(DEVICE) --methods "" --ratios metrics --out $(OUT)/perf-metrics.json $(ARGS)
