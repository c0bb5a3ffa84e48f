#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (curl, nats-server, etcd,
# protoc, chromium, a Python with grpcio for the gRPC test, cargo-fuzz), checks formatting and lints,
# runs every test, then fuzzes each target for a bounded time (scripts/fuzz.sh).
#
#   scripts/test.sh            # everything
#   scripts/test.sh grpc       # extra arguments go to the test runner (a filter here)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3 python3-venv)
# The fleet tests run real NATS and etcd servers; the etcd-client crate compiles etcd's
# protocol with protoc and its well-known types.
command -v nats-server >/dev/null || need+=(nats-server)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v protoc >/dev/null || need+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
# The status page is tested in headless Chromium.
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! .venv/bin/python -c 'import grpc, cryptography, prometheus_client' 2>/dev/null; then
  echo "== python venv with grpcio, cryptography and prometheus-client (.venv)"
  python3 -m venv .venv
  .venv/bin/pip install -q grpcio cryptography prometheus-client
fi
command -v cargo-fuzz >/dev/null || { echo "== cargo install cargo-fuzz"; cargo install cargo-fuzz --locked --version 0.13.2; }
export SWITCHYARD_PYTHON="$PWD/.venv/bin/python"

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

echo "== tests"
start=$SECONDS
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test "$@"
fi
echo "== test suite took $((SECONDS - start)) s"

echo "== fuzzing (every target ${FUZZ_SECONDS:-20} s; scripts/fuzz.sh)"
scripts/fuzz.sh
