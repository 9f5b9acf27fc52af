# Set-up and everyday commands. Each target creates the virtualenv when needed,
# so on a fresh machine `make run` or `make test` is all there is to type.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test test-fast lab mlflow-ui api bench clean-lake help

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
	$(BIN)/ruff check lib tests ml
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: setup  ## unit tests only (no papermill, no end-to-end job)
	$(BIN)/python -m pytest -n 2 -m "not slow"

lab: setup  ## open JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks

api: setup  ## serve the internal read-only API over gold (create a token first: lakehouse api token create --role R)
	$(BIN)/lakehouse api serve

bench: setup  ## benchmark scales 0.1, 1, 5, 20 and 50 (stages, incremental, engines side by side; over an hour): bench/results/
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/lakehouse bench run --scales 0.1,1,5,20,50

mlflow-ui: setup  ## open the MLflow UI on the project's tracking store and registry (var/mlflow/)
	$(BIN)/mlflow ui --backend-store-uri "$$($(BIN)/python -c 'from lakehouse.config import load_settings; from lakehouse.ml.tracking import tracking_uri; print(tracking_uri(load_settings()))')" --host 127.0.0.1 --port 5000

.PHONY: dashboards
dashboards: setup  ## regenerate the static HTML dashboards from gold (var/bi/dashboards/index.html)
	$(BIN)/lakehouse bi dashboards

clean-lake:  ## delete the local lake, runs and embedded PostgreSQL data
	rm -rf lake runs var

.PHONY: spark-serve spark-stop
spark-serve: setup  ## start a local Apache Spark 4 Spark Connect server with Delta (docs/spark.md); then export SPARK_REMOTE=sc://127.0.0.1:15002
	$(BIN)/lakehouse spark serve

spark-stop:  ## stop the local Spark Connect server
	$(BIN)/lakehouse spark stop

.PHONY: test-spark
test-spark: setup  ## same gold numbers on Sail and on Apache Spark 4 with Delta (starts a local Spark Connect server; Java 17, Maven Central)
	LAKEHOUSE_TEST_SPARK=1 $(BIN)/python -m pytest -m spark tests/engines -v -s

# Apache Airflow 3 in a virtualenv of its own (its pins cannot share the project's):
# the real Airflow that loads and runs the DAGs of `lakehouse jobs export-airflow`.
AIRFLOW_VENV  ?= var/airflow-venv
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed-stamp

.PHONY: airflow-venv
airflow-venv: $(AIRFLOW_STAMP)  ## Apache Airflow 3 in var/airflow-venv, for tests/jobs/test_airflow_real.py (docs/airflow.md)

$(AIRFLOW_STAMP): conf/airflow/requirements.txt conf/airflow/constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -r conf/airflow/requirements.txt -c conf/airflow/constraints.txt
	$(AIRFLOW_VENV)/bin/airflow version
	touch $@
