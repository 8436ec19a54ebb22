# The two commands a newcomer runs: `make demo` and `make test`. Both install what they need, and
# touch neither the system Python nor PATH:
# - uv: the one on PATH if there is one, else a pinned copy in .tools/, a virtual environment of its
#   own (Debian's and Ubuntu's Python is "externally managed", PEP 668: `pip install --user` is refused);
# - the locked environment in .venv/ (`uv sync --locked`, compiled to bytecode), whose bin/ holds
#   `mayorista` and `airflow`.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := $(CURDIR)/.tools
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export GX_ANALYTICS_ENABLED := False

.PHONY: cluster demo test test-all env airflow-db bench sample airflow test-unit test-integration lint

$(TOOLS)/bin/uv:
	@echo "make: installing uv $(UV_VERSION) into .tools/ (a virtual environment of its own)"
	@$(PYTHON) -m venv $(TOOLS) >/dev/null 2>&1 || { rm -rf $(TOOLS); \
	  echo "make: '$(PYTHON) -m venv' failed. On Debian/Ubuntu: sudo apt-get install python3-venv; or install uv (https://docs.astral.sh/uv/)" >&2; \
	  exit 2; }
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --compile-bytecode: every process (each CLI run, each Airflow task, each test's subprocess) then
# reads compiled modules instead of compiling Airflow, Great Expectations and pandas again; where
# PYTHONDONTWRITEBYTECODE is set (as on this project's machines) nothing else ever writes them.
# Measured: importing Great Expectations 9.4 -> 4.0 s of CPU. The project's own packages likewise.
env: $(UV)
	$(UV) sync --locked --quiet --compile-bytecode
	@$(UV) run --locked python -m compileall -q pipelines dags > /dev/null

$(AIRFLOW_HOME)/airflow.db: | env
	mkdir -p $(AIRFLOW_HOME)
	$(UV) run --locked airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1

airflow-db: $(AIRFLOW_HOME)/airflow.db

demo: env airflow-db
	$(UV) run --locked python -m pipelines.demo

# `make test`: on both cores, every test that needs no running Airflow deployment, no PostgreSQL and
# no browser: the unit tests (DAGs included, through dag.test()), the fault-injection suite and the
# backfill CLI. Its last lines say what it left out and how to run that: `make test-all`, what .ci/run
# runs after starting PostgreSQL and installing Chromium (the end-to-end scheduler tests start real
# Airflow deployments one after another, about 11 minutes on 2 cores).
SCHEDULER_TESTS := tests/integration/test_scheduler.py tests/integration/test_meter_days.py tests/integration/test_assets.py
# what make test-all runs after the unit tests: each module starts its own Airflow deployment (the backfill
# CLI's tests need none: they run on both cores with the unit tests)
CLUSTER_TESTS := tests/integration/test_cluster.py
DEPLOYMENT_TESTS := $(SCHEDULER_TESTS) $(CLUSTER_TESTS)
test: env
	@$(UV) run --locked pytest -q -n 2 --dist worksteal --durations=10 -m "not slow" $(addprefix --ignore=,$(DEPLOYMENT_TESTS)); status=$$?; \
	echo; \
	echo "make test left out (to run everything, as CI does: make test-all):"; \
	echo "  - 41 slow cases (tests/conftest.py SLOW; pytest --collect-only -q -m slow lists them): SIGKILL in"; \
	echo "    meters and delivery, the catalog's full and read-only disks, damaged files, racing maintenance, concurrent"; \
	echo "    ingests, 14 of the 19 analyst escapes, determinism at scale, the S3 endpoint lost mid-publish, more hostile"; \
	echo "    files and names, the lake on fsspec's memory://, two quarters at once; make test ran one case of each family"; \
	echo "  - the end-to-end scheduler tests, tests/integration/{test_scheduler,test_meter_days,test_assets}.py, and the"; \
	echo "    cluster test (test_cluster.py: Redis, an S3 endpoint, two Celery workers; with MAYORISTA_TEST_CLUSTER=1):"; \
	echo "    real Airflow deployments on SQLite, and on PostgreSQL + LocalExecutor when MAYORISTA_TEST_POSTGRES_URL"; \
	echo "    is set (.ci/run starts PostgreSQL and sets it); make test-all runs them beside the other tests"; \
	echo "  - lint (make lint)"; \
	echo "  - the tests listed as SKIPPED above, for what this machine lacks (e.g. Chromium for the report tests)"; \
	exit $$status

# `make test-all`: lint, then every test in two lanes side by side. The Airflow deployments mostly wait on
# their schedulers (measured: the scheduler tests took 812 s of wall for 210 s of CPU), so they run, one
# module after another (test_scheduler.py, test_meter_days.py, test_assets.py, then the cluster test where
# MAYORISTA_TEST_CLUSTER=1), beside the unit and fault tests (all slow cases too, on both cores) instead
# of after them. Their output is kept in .test-deployments.log and printed when both lanes are done.
# Both lanes at the same priority: the unit lane at nice 5 was tried and made the whole run slower where
# anything else ran beside it, without speeding the deployments (docs/testing.md#why-lanes).
test-all: lint env
	@( $(UV) run --locked pytest -q --durations=5 $(SCHEDULER_TESTS); scheduler=$$?; \
	   $(UV) run --locked pytest -q --durations=5 $(CLUSTER_TESTS); cluster=$$?; \
	   [ $$scheduler = 0 ] && [ $$cluster = 0 ] ) > .test-deployments.log 2>&1 & deployments=$$!; \
	echo "make test-all: the Airflow deployments run beside these tests; their output follows at the end"; \
	$(UV) run --locked pytest -q -n 2 --dist worksteal --durations=10 $(addprefix --ignore=,$(DEPLOYMENT_TESTS)); unit=$$?; \
	wait $$deployments; deployed=$$?; \
	echo; echo "== the Airflow deployments: $(DEPLOYMENT_TESTS) =="; cat .test-deployments.log; \
	echo "make test-all: exit $$unit (unit and fault tests), $$deployed (Airflow deployments)"; \
	[ $$unit = 0 ] && [ $$deployed = 0 ]

# ruff: lint and formatting of the Python (configured in pyproject.toml); sqlfluff: the same for the
# SQL in sql/ (configured in .sqlfluff; `uv run sqlfluff fix sql/` formats it). .ci/run runs it first.
lint: env
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked sqlfluff lint sql/

# `make cluster`: a multi-machine deployment on this machine (docs/scale-out.md): Redis, PostgreSQL, an S3
# endpoint, Airflow's scheduler, DAG processor, triggerer and API server, two Celery workers, each its own
# process and folder under .cluster/; runs two NCC-11 quarters, March 2026 as a backfill of daily meter runs
# and March's delivery check, prints where each task ran, compares the warehouse with a single-machine run,
# and stops all it started. CLUSTER_ARGS=--one-worker-too also times the backfill with one worker.
cluster: env
	UV=$(UV) .ci/cluster $(CLUSTER_ARGS)

sample: env
	$(UV) run --locked mayorista sample

bench: env
	$(UV) run --locked python bench/ncc11_bench.py
	$(UV) run --locked python bench/meters_bench.py

# `make airflow`: all of Airflow on this machine (scheduler, DAG processor, triggerer, API server and
# UI, LocalExecutor) via `airflow standalone`, metadata in SQLite under $(AIRFLOW_HOME), the project's
# DAGs, inputs from data/sample (MAYORISTA_LANDING), warehouse catalog data/warehouse.sqlite, lake
# data/lake/. Ctrl-C stops it.
AIRFLOW_PORT ?= 8080
airflow: env airflow-db
	@$(UV) run --locked python -c "import sys; from airflow.models import DagBag; \
	b = DagBag(dag_folder='dags'); print('DAGs:', ', '.join(sorted(b.dags))); \
	[print('IMPORT ERROR', f, e, file=sys.stderr) for f, e in b.import_errors.items()]; sys.exit(bool(b.import_errors))"
	@host=$${AIRFLOW__API__HOST:-127.0.0.1}; banner() { \
	  for i in $$(seq 120); do \
	    if $(CURDIR)/.venv/bin/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$(AIRFLOW_PORT)/api/v2/version', timeout=2)" 2>/dev/null; then \
	      echo; echo "==> Airflow is up: http://127.0.0.1:$(AIRFLOW_PORT)   login: $$($(CURDIR)/.venv/bin/python -c \
	        "import json; print(*(f'{u} / {p}' for u, p in json.load(open('$(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated')).items()))")"; \
	      echo "==> DAGs start paused: unpause and trigger them in the UI (give the period as a param, e.g. {\"quarter\": \"2026-05\"})"; \
	      if [ "$$host" = 127.0.0.1 ]; then \
	        echo "==> From another machine: run  ssh -N -L $(AIRFLOW_PORT):127.0.0.1:$(AIRFLOW_PORT) $$(id -un)@$$(hostname -f 2>/dev/null || hostname)  there"; \
	        echo "    and open http://127.0.0.1:$(AIRFLOW_PORT) there; or listen on every interface (anyone who reaches the port"; \
	        echo "    gets the login page): AIRFLOW__API__HOST=0.0.0.0 AIRFLOW_PORT=$(AIRFLOW_PORT) make airflow, then open http://$$(hostname -f 2>/dev/null || hostname):$(AIRFLOW_PORT)"; \
	      else echo "==> From another machine: http://$$(hostname -f 2>/dev/null || hostname):$(AIRFLOW_PORT) (listening on $$host)"; fi; \
	      echo; \
	      return; fi; sleep 2; done; }; \
	banner & trap "kill $$! 2>/dev/null" EXIT; \
	PATH="$(CURDIR)/.venv/bin:$$PATH" AIRFLOW__API__PORT=$(AIRFLOW_PORT) AIRFLOW__API__HOST=$$host \
	AIRFLOW__CORE__PARALLELISM=$${AIRFLOW__CORE__PARALLELISM:-4} $(UV) run --locked airflow standalone

# the unit tests only (fast), and the end-to-end scheduler tests only (SQLite; PostgreSQL too when
# MAYORISTA_TEST_POSTGRES_URL is set, as .ci/run does). `make test-all` runs both, and the faults.
test-unit: env
	$(UV) run --locked pytest -q -n 2 --ignore=tests/integration --ignore=tests/faults

test-integration: env
	$(UV) run --locked pytest -q tests/integration --durations=10
