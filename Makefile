# vfr-bench: the two commands that matter are `make bench` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
VFR := $(VENV)/bin/vfr-bench
METHOD ?=
SPLIT ?= sample
DEVICES ?= 1
OUT ?= results
ARGS ?=

.PHONY: install bench test test-fast perf clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23" "setuptools>=64" wheel
	# torch/torchvision first: pip takes the local wheels where the machine caps them
	$(PY) -m pip install -q torch torchvision
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

bench: install
	$(VFR) bench --method "$(if $(METHOD),$(METHOD),all)" --split $(SPLIT) --devices $(DEVICES) --out $(OUT) $(ARGS)

test: install
	$(PY) -m pytest -q $(ARGS)

test-fast: install
	$(PY) -m pytest -q -m "not conformance and not slow" $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

.PHONY: perf-metrics
perf-metrics: install
	$(PY) scripts/perf_metrics.py $(ARGS)
