#!/usr/bin/env bash
# Run once by the postgres image, on the first start with an empty data volume
# (/docker-entrypoint-initdb.d). Creates one role and one database each for Airflow's metadata and
# the hub's ledger, so that they are backed up, restored and upgraded separately; and, when
# LICENSING_DB_PASSWORD is set (the `simulators` profile), one for the licensing simulator.
# Passwords come from the environment (.env), never from this file.
set -euo pipefail

create() {  # role database password
  local role=$1 database=$2 password=$3
  echo "init-databases: role and database ${database}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       --set=role="$role" --set=database="$database" --set=password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role" ENCODING 'UTF8';
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
}

# Names are fixed in docker/compose.yaml; the overrides exist for tests/deploy.
airflow=${AIRFLOW_DB_NAME:-airflow} hub=${HUB_DB_NAME:-hub} licensing=${LICENSING_DB_NAME:-licensing}
create "$airflow" "$airflow" "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}"
create "$hub" "$hub" "${HUB_DB_PASSWORD:?HUB_DB_PASSWORD is not set}"
if [[ -n "${LICENSING_DB_PASSWORD:-}" ]]; then
  create "$licensing" "$licensing" "$LICENSING_DB_PASSWORD"
fi
