#!/usr/bin/env bash
# Runs switchyard as a benchmark peer. Reads LISTEN (host:port), BACKENDS (comma-separated
# host:port list), WORKERS and optional HTTPS (host:port), CERT, KEY from the environment,
# writes a config next to the binary's run folder and execs the router.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${SWITCHYARD_BIN:-$ROOT/target/release/switchyard}
CONFIG=$(mktemp /tmp/switchyard-bench.XXXXXX.toml)
backends=$(echo "$BACKENDS" | tr ',' '\n' | sed 's/.*/"&"/' | paste -sd, -)
{
  echo "[listen]"
  echo "http = \"$LISTEN\""
  echo "admin = \"127.0.0.1:0\""
  if [[ -n ${HTTPS:-} ]]; then
    echo "https = \"$HTTPS\""
    echo "[tls]"
    echo "certs = [{ cert = \"$CERT\", key = \"$KEY\" }]"
  fi
  echo "[server]"
  echo "workers = ${WORKERS:-1}"
  echo "[proxy]"
  echo "max_conns_per_backend = 0"
  echo "[[route]]"
  echo "uri = \"/\""
  echo "backends = [$backends]"
} > "$CONFIG"
exec "$BIN" run --config "$CONFIG"
