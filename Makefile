# `make demo` and `make test` work on a fresh machine: each creates .venv when it
# is missing and installs everything once; a second run installs nothing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

# torch/torchvision pairs that pip finds on this workplace's disk (other
# versions download several GB): x86_64 + Python 3.11 -> 2.14.1/0.29.1,
# aarch64 -> 2.9.1/0.24.1 (a CPU build).
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH := torch==2.9.1 torchvision==0.24.1
else
TORCH := torch==2.14.1 torchvision==0.29.1
endif

TORCH_STAMP   := $(VENV)/.torch-installed
INSTALL_STAMP := $(VENV)/.auxsearch-installed

.PHONY: install demo test test-all lint bench clean

install: $(INSTALL_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(TORCH_STAMP): | $(PY)
	$(PIP) install --quiet $(TORCH)
	touch $@

$(INSTALL_STAMP): pyproject.toml $(TORCH_STAMP)
	$(PIP) install --quiet -e '.[dev,all]'
	touch $@

demo: $(INSTALL_STAMP)
	$(VENV)/bin/auxsearch demo

test: lint
	$(PY) -m pytest -q

test-all: $(INSTALL_STAMP)
	$(PY) -m pytest -q -m ''

lint: $(INSTALL_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(INSTALL_STAMP)
	$(PY) benchmarks/pairs_overhead.py
	$(PY) benchmarks/cpu_step.py
	$(PY) benchmarks/precision.py
	$(PY) benchmarks/adaptive_seeds.py
	$(PY) benchmarks/lambda_halving.py
	$(PY) benchmarks/kernels_device.py
	$(PY) benchmarks/pack_gpu.py
	$(PY) benchmarks/sweep_asha.py
	$(PY) benchmarks/soseleto_step.py
	$(PY) benchmarks/decode_cache.py
	$(PY) benchmarks/aal_shortcut.py

clean:
	rm -rf $(VENV) auxsearch-demo .pytest_cache .mypy_cache .ruff_cache *.egg-info
