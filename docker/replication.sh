#!/usr/bin/env bash
# Runs once, when the primary's data directory is first created (docker-entrypoint-initdb.d):
# lets a standby on the compose network stream WAL (pg_basebackup -R) with the same password.
set -euo pipefail
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
