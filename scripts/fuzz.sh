#!/usr/bin/env bash
# Fuzzes every target for a bounded time each (libFuzzer through cargo fuzz), starting from the
# seed corpora in fuzz/seeds; a crash fails the script and leaves its input in
# fuzz/artifacts/<target>/ (make it a regression test).
#
#   scripts/fuzz.sh                  # every target, 20 s each (what scripts/test.sh runs)
#   FUZZ_SECONDS=3600 scripts/fuzz.sh hpack h2_connection   # a long run of some targets
#
# cargo fuzz needs nightly features; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-20}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(hpack h2_connection h1_request_head response_head chunked config registration)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# One build for every target.
cargo fuzz build -O --debug-assertions
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  echo "== fuzz $target for ${seconds}s"
  cargo fuzz run -O --debug-assertions "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+ *DONE|Done|stat::number_of_executed_units|==|SUMMARY|.*panicked|.*ERROR)" || true
  if [ -n "$(ls -A "fuzz/artifacts/$target" 2>/dev/null)" ]; then
    echo "fuzz $target found a crash: fuzz/artifacts/$target/"; exit 1
  fi
done
