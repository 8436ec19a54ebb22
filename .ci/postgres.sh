# Sourced by .ci/run (CI) and .ci/cluster (make cluster): start_postgres starts the distribution's
# PostgreSQL (installed with apt where missing, as root), creates the login role `mayorista` that may
# create databases, and exports MAYORISTA_TEST_POSTGRES_URL. It sets MAYORISTA_POSTGRES_STARTED=1 when
# it was the one to start the server (so that .ci/cluster stops it again, and only then).
# `start_postgres throwaway` (CI): a server it starts runs without fsync, for that start only.
start_postgres() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "ci: not root or no apt-get: PostgreSQL tests will be skipped" >&2
        return 0
    fi
    if ! command -v pg_lsclusters >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    local version
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    pg_lsclusters -h | awk '{print $2}' | grep -qx main || pg_createcluster "$version" main
    if pg_ctlcluster "$version" main status >/dev/null 2>&1; then
        MAYORISTA_POSTGRES_STARTED=0
    else
        if [ "${1:-}" = throwaway ]; then
            # CI's server lives for one run and holds only test databases: no fsync at each commit
            # (Airflow's scheduler and the DuckLake catalog commit often). For this start only: nothing
            # is written to the cluster's configuration.
            pg_ctlcluster "$version" main start -- -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        else
            pg_ctlcluster "$version" main start
        fi
        MAYORISTA_POSTGRES_STARTED=1
    fi
    export MAYORISTA_POSTGRES_VERSION="$version" MAYORISTA_POSTGRES_STARTED
    local port
    port=$(pg_lsclusters -h | awk '$2 == "main" {print $3}')
    # a login role that may create the per-session test databases (tests/integration/conftest.py)
    su postgres -c "psql -q -p $port -v ON_ERROR_STOP=1" <<'SQL'
SELECT 'CREATE ROLE mayorista LOGIN CREATEDB PASSWORD ''mayorista'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mayorista')\gexec
SQL
    export MAYORISTA_TEST_POSTGRES_URL="postgresql+psycopg2://mayorista:mayorista@127.0.0.1:$port/postgres"
    echo "ci: PostgreSQL $version on port $port for the integration tests" >&2
}
