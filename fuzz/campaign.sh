#!/usr/bin/env bash
# The long fuzzing campaign: each target in turn, in one process (libFuzzer's
# default: no -jobs, no -workers, so one core), niced,
# bounded by RUNS executions and SECONDS_EACH seconds. Usage (from anywhere):
#   fuzz/campaign.sh [TARGET...]          (default: every target)
# Environment: RUNS (10000000), SECONDS_EACH (900), LOGS (fuzz/logs),
# CARGO_TARGET_DIR (default: fuzz/target).
set -uo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-10000000}
SECONDS_EACH=${SECONDS_EACH:-900}
LOGS=${LOGS:-logs}
mkdir -p "$LOGS"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O -a --sanitizer none || exit 1
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    # A command line is short, and the longest transfer message is 1041
    # bytes: longer inputs only repeat what shorter ones test, slower.
    max_len=1200
    [ "$t" = lexer ] && max_len=256
    nice -n 10 cargo fuzz run -O -a --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
        -runs="$RUNS" -max_total_time="$SECONDS_EACH" -max_len="$max_len" \
        -print_final_stats=1 >"$LOGS/$t.log" 2>&1
    echo "$t: exit $? $(grep -E '^#[0-9]+' "$LOGS/$t.log" | tail -1)"
done
