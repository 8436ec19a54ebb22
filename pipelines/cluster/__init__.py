"""`make cluster`: a multi-machine deployment on one machine (issue #22, docs/scale-out.md).

Every component is its own process, in its own session, with its own working folder under the
cluster's root, as if on its own host: Redis (Celery broker), moto's S3 endpoint, Airflow's scheduler,
DAG processor, triggerer and API server, and two Celery workers with their own scratch folders.
PostgreSQL (metadata DB and DuckLake catalog) is the distribution's server, started by `.ci/cluster`
as `.ci/run` starts it for CI. Nothing here imports Airflow: it is driven by its CLI and REST API."""
