# voiptime-etl: everything runs inside .venv, created on first use.
# make demo / make test install the exact versions in requirements.lock (the ones the suite last
# passed with); make lock refreshes that file. `pip install .` for users still takes the ranges
# in pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PIP := -m pip --disable-pip-version-check

.PHONY: install demo test bench check clean sample-data lock

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@echo "Setting up $(VENV): installing voiptime-etl with the pinned versions of $(LOCK)"
	@echo "($$(grep -c '==' $(LOCK)) packages, e.g. $$(grep -iE '^(pandas|pandera)==' $(LOCK) | paste -sd ' ' -)); the first time takes about a minute..."
	$(PYTHON) -m venv $(VENV)
	$(PY) $(PIP) install --quiet -c $(LOCK) -e '.[dev]'
	@echo "Installed from $(LOCK) into $(VENV)."
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

# The bench extra (frictionless-py, pinned in $(LOCK)) is installed by the script: if that fails,
# its row says "not measured" and why, and the rest of the table is measured.
bench: $(STAMP)
	$(PY) scripts/bench_pipeline.py --install-extra

check: $(STAMP)
	$(VENV)/bin/ruff check etl tests scripts
	$(VENV)/bin/ruff format --check etl tests scripts
	$(VENV)/bin/mypy --strict etl

# The newest versions pyproject.toml's ranges allow (the dev and bench extras too, so make bench
# installs pinned versions as well), in a scratch venv; the lock file is replaced only when the
# whole suite passes with them. Commit requirements.lock afterwards.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	@echo "Installing the newest versions the ranges in pyproject.toml allow into .venv-lock..."
	.venv-lock/bin/python $(PIP) install --quiet --upgrade -e '.[dev,bench]'
	.venv-lock/bin/python -m pytest -q -p no:cacheprovider
	{ echo "# Exact versions the test suite last passed with (make lock; used by make install/test/demo)."; \
	  echo "# Python $$(.venv-lock/bin/python -c 'import platform; print(platform.python_version())'), $$(date -u +%Y-%m-%d)."; \
	  .venv-lock/bin/python $(PIP) freeze --exclude-editable | grep -v '^-e '; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock
	@echo "$(LOCK) refreshed; the next make install/test/demo installs it."

sample-data: $(STAMP)
	$(PY) scripts/make_sample_data.py

clean:
	rm -rf $(VENV) .venv-lock reports .voiptime-etl .pytest_cache
