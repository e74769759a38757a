# voiptime-etl: everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench check clean sample-data

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) scripts/bench.py
	$(PY) scripts/bench_pipeline.py

check: $(STAMP)
	$(VENV)/bin/ruff check etl tests scripts
	$(VENV)/bin/ruff format --check etl tests scripts
	$(VENV)/bin/mypy etl

sample-data: $(STAMP)
	$(PY) scripts/make_sample_data.py

clean:
	rm -rf $(VENV) reports .voiptime-etl .pytest_cache
