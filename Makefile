# The two commands a newcomer runs: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
UV := $(or $(shell command -v uv 2>/dev/null),$(HOME)/.local/bin/uv)
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export GX_ANALYTICS_ENABLED := False

.PHONY: demo test env airflow-db bench sample

$(UV):
	python3 -m pip install --user --quiet uv

env: $(UV)
	$(UV) sync --locked --quiet

$(AIRFLOW_HOME)/airflow.db: | env
	mkdir -p $(AIRFLOW_HOME)
	$(UV) run --locked airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1

airflow-db: $(AIRFLOW_HOME)/airflow.db

demo: env airflow-db
	$(UV) run --locked python -m pipelines.demo

test: env
	$(UV) run --locked pytest -q

sample: env
	$(UV) run --locked mayorista sample

bench: env
	$(UV) run --locked python bench/ncc11_bench.py
	$(UV) run --locked python bench/meters_bench.py
