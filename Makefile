# Set-up and everyday commands. Each target creates the virtualenv when needed,
# so on a fresh machine `make run` or `make test` is all there is to type.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test test-fast lab mlflow-ui clean-lake help

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project with its pinned dependencies

run: setup  ## generate data, start PostgreSQL, run the daily job, print where everything is
	$(BIN)/lakehouse quickstart

test: setup  ## lint, then the whole test suite (unit, jobs through papermill, end to end)
	$(BIN)/ruff check lib tests
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: setup  ## unit tests only (no papermill, no end-to-end job)
	$(BIN)/python -m pytest -n 2 -m "not slow"

lab: setup  ## open JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks

clean-lake:  ## delete the local lake, runs and embedded PostgreSQL data
	rm -rf lake runs var
