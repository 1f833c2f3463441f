#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 60) and print a summary line per target.
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The toolchain is stable, so the nightly-only
# sanitizer flags are allowed with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in $(cargo fuzz list); do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  if cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see fuzz/artifacts/$t)"
  fi
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o 'cov: [0-9]*' || true)
  echo "$t: $result, ${execs:-?} executions in ${secs}s, ${cov:-cov: ?}"
  rm -f "$log"
done
