#!/usr/bin/env bash
# The `init` service: one-shot, before any other hub or Airflow container starts, on every
# `docker compose up`. Every step is idempotent. Any failure stops the stack from starting (the
# other services wait for this one to complete successfully) with the reason in `docker compose
# logs init`.
#
#   1. Airflow's metadata database: migrate.
#   2. Airflow's admin account (FAB auth manager), unless it exists.
#   3. The hub's ledger: migrate, then check that it is consistent (`hub check`).
#   4. The hub's first admin account (`hub users add`), unless it exists.
#   5. Connections from the environment: every AIRFLOW_CONN_* the hub uses is defined and readable
#      by its connector (`hub connections`); `crm` is required, a missing back office is a warning.
set -euo pipefail

say() { echo "[init] $*"; }
fail() { echo "[init] $*" >&2; exit 1; }

for name in AIRFLOW__DATABASE__SQL_ALCHEMY_CONN HUB_DATABASE_URL AIRFLOW_ADMIN_USERNAME \
            AIRFLOW_ADMIN_PASSWORD HUB_ADMIN_USERNAME HUB_ADMIN_PASSWORD; do
  [[ -n "${!name:-}" ]] || fail "$name is not set: see .env.example and docs/deploying.md"
done

say "1/5 Airflow metadata database: migrating"
airflow db migrate

say "2/5 Airflow admin account ${AIRFLOW_ADMIN_USERNAME} (an existing account is left as it is)"
airflow users create --role Admin --username "$AIRFLOW_ADMIN_USERNAME" \
  --firstname Hub --lastname Administrator \
  --email "${AIRFLOW_ADMIN_EMAIL:-${AIRFLOW_ADMIN_USERNAME}@localhost}" \
  --password "$AIRFLOW_ADMIN_PASSWORD"

say "3/5 hub ledger: migrating and checking"
hub upgrade
hub check || fail "the ledger is not consistent (findings above): see docs/deploying.md, 'Backing up and restoring the ledger'"

say "4/5 hub admin account ${HUB_ADMIN_USERNAME}"
if hub users --help >/dev/null 2>&1; then
  if output=$(printf '%s\n' "$HUB_ADMIN_PASSWORD" |
              hub users add "$HUB_ADMIN_USERNAME" --role admin --password-stdin 2>&1); then
    say "    created"
  elif grep -qi "exists" <<<"$output"; then
    say "    exists; unchanged (\`hub users reset-password\` to change it)"
  else
    printf '%s\n' "$output" >&2
    fail "could not create the hub admin account"
  fi
else
  say "    WARNING: this build of the hub has no \`hub users\` command; no hub account created"
fi

say "5/5 Connections from the environment"
hub connections --require crm || fail "fix the Connections above in .env (or the secrets backend)"

say "done"
