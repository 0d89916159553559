# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench audit clean

# torch goes in first and pinned: the project's range is then already satisfied and pip
# never reaches for a multi-GB CUDA build. The ray extra is in so the tests build indexes on Ray too.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,ray]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/embedops demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest --durations=25

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/scifact_finetune.py
	$(PY) benchmarks/training_overhead.py

# Known vulnerabilities in every installed package, from PyPI's advisory data (needs the network).
# --strict: a package the service cannot look up fails the audit instead of passing unchecked.
audit: $(STAMP)
	$(PYTHON) -m venv .venv-audit && .venv-audit/bin/pip install -q pip-audit
	$(PY) -m pip freeze --exclude-editable > .venv-audit/installed.txt
	.venv-audit/bin/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r .venv-audit/installed.txt

clean:
	rm -rf $(VENV) .venv-audit mlruns .pytest_cache
