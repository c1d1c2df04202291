# whisper-harvest: two commands matter — `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
WORKSPACE ?= demo

.PHONY: setup system-tools demo test bench

# What the test suite runs besides Python: ffmpeg/ffprobe (test audio is cut with them),
# espeak-ng (speech with known text), chromium + chromium-driver (the demo page in a browser).
# `make demo` needs none of them (imageio-ffmpeg ships an ffmpeg through pip).
SYSTEM_TOOLS := ffmpeg ffprobe espeak-ng chromium chromedriver
APT_PACKAGES := ffmpeg espeak-ng chromium chromium-driver

# The venv is (re)installed when pyproject.toml changes. CPU torch goes in first so
# the project's `torch>=` requirement never pulls the multi-GB CUDA wheels.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PY) -m pip install --quiet -e ".[all]"
	touch $@

setup: $(VENV)/.installed

# Installs the missing tools with apt-get when run as root (CI, containers); otherwise stops
# before anything else happens and prints the one command that installs them. It waits for
# the dpkg lock (another apt-get running) instead of failing.
system-tools:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "make test needs$$missing. Install them with:" >&2; \
		echo "    sudo apt-get install -y $(APT_PACKAGES)" >&2; \
		exit 1; \
	fi; \
	echo "installing$$missing with apt-get"; \
	apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $(APT_PACKAGES) >/dev/null

demo: setup
	$(PY) examples/run_demo.py --workspace $(WORKSPACE)

test: system-tools setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/harvest.py
	$(PY) bench/segment.py
	$(PY) bench/label.py
	$(PY) bench/label_quality.py
	$(PY) bench/label_memory.py
	$(PY) bench/faults.py
