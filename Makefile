# whisper-harvest: two commands matter — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
WORKSPACE ?= demo

.PHONY: setup demo test bench

# The venv is (re)installed when pyproject.toml changes. CPU torch goes in first so
# the project's `torch>=` requirement never pulls the multi-GB CUDA wheels.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e ".[all]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) examples/run_demo.py --workspace $(WORKSPACE)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/harvest.py
	$(PY) bench/segment.py
	$(PY) bench/label.py
	$(PY) bench/label_quality.py
	$(PY) bench/label_memory.py
	$(PY) bench/faults.py
