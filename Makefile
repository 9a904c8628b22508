# Set-up, local stack and tests on a machine with nothing but Python 3.11 and git (see README.md).
# Everything lands inside the checkout: .venv/ (packages), .airflow/ (Airflow home), .lab/ (lab state).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check
# setuptools >= 70.1 builds wheels by itself, so `pip install -e .` needs no build isolation.
BUILD_TOOLS := setuptools>=70.1
INSTALLED := $(VENV)/.installed

.PHONY: install run test figures bench lock clean

install: $(INSTALLED)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(BIN)/python requirements.txt requirements-test.txt constraints.txt pyproject.toml
	$(PIP) install -c constraints.txt '$(BUILD_TOOLS)'
	$(PIP) install -r requirements.txt -r requirements-test.txt -c constraints.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

# The lab and `airflow standalone`, supervised together; Ctrl-C stops both.
run: install
	$(BIN)/python -m scripts.devstack

# The whole suite. Importing Airflow writes into AIRFLOW_HOME, so tests get their own inside .airflow/.
test: install
	bash scripts/debian-packages.sh
	AIRFLOW_HOME=$(CURDIR)/.airflow/pytest $(BIN)/python -m pytest $(PYTEST_ARGS)

# The reliability suite alone (bad inputs, faults, a kill mid-step); its figures print at the end.
figures: install
	AIRFLOW_HOME=$(CURDIR)/.airflow/pytest $(BIN)/python -m pytest -q tests/e2e/test_bad_inputs.py tests/dags/test_faults.py \
		tests/dags/test_canal_to_cilium_refusals.py tests/e2e/test_resume_after_kill.py

# Every benchmark against the lab, side by side; prints a table and writes bench/results/ (~5 min).
bench: install
	$(BIN)/python -m bench

# Re-resolve requirements*.txt from the package index in a fresh venv and freeze the result.
lock:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/pip" install --disable-pip-version-check -r requirements.txt -r requirements-test.txt '$(BUILD_TOOLS)' && \
	{ echo '# Full lock of the resolved environment (runtime + test), made with pip freeze from a fresh venv'; \
	  echo '# on Python 3.11. Regenerate with: make lock'; \
	  "$$tmp/venv/bin/pip" freeze --all --exclude pip; } > "$$tmp/constraints.txt" && \
	mv "$$tmp/constraints.txt" constraints.txt

clean:
	rm -rf $(VENV) .airflow .lab
