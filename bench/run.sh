#!/usr/bin/env bash
# One command for the side-by-side benchmark: installs the peers and load generators from
# Debian, builds switchyard in release mode, then runs bench.py (arguments pass through).
#   bench/run.sh                         # every scenario, switchyard + nginx + haproxy
#   bench/run.sh --scenarios h1,h2c      # a subset
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need=()
for tool in wrk:wrk nginx:nginx-light haproxy:haproxy h2load:nghttp2-client openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cargo build --release
exec python3 bench/bench.py "$@"
