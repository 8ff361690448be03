#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server on loopback, exported to it as
# SOVRISK_TEST_POSTGRES_URL, then stop the server and delete its data, whatever happens.
#
#   scripts/with_postgres.sh .venv/bin/python -m pytest
#
# Uses the Debian postgresql packages; installs them with apt-get when missing and we are
# root (as in CI). Without PostgreSQL (and not root) the command runs without the variable,
# and the PostgreSQL half of the store tests is skipped (it fails instead when CI=true).
set -euo pipefail

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

BIN="$(find_bin || true)"
if [[ -z "$BIN" && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "with_postgres: installing postgresql (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
  BIN="$(find_bin || true)"
fi
if [[ -z "$BIN" ]]; then
  echo "with_postgres: PostgreSQL not found; running without it" >&2
  exec "$@"
fi

PORT="${SOVRISK_TEST_PG_PORT:-55432}"
DIR="$(mktemp -d /tmp/sovrisk-pg.XXXXXX)"
AS=()
if [[ "$(id -u)" == 0 ]]; then
  chown postgres "$DIR"  # the server refuses to run as root
  AS=(runuser -u postgres --)
fi

cleanup() {
  "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

"${AS[@]}" "$BIN/initdb" -D "$DIR/data" -A trust -U sovrisk -E UTF8 >/dev/null
"${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
export SOVRISK_TEST_POSTGRES_URL="postgresql://sovrisk@127.0.0.1:$PORT/postgres"
echo "with_postgres: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
"$@"
