#!/usr/bin/env bash
# Bounded fuzzing runs of the targets in fuzz/ (not part of CI): installs cargo-fuzz into
# .amp-cache once, then runs each target for RUNS executions (default 1,000,000), each at
# most MAX_SECS seconds (default 900), with libFuzzer's memory and per-input time limits.
# Seeds come from fuzz/corpus/<target>; what the run finds goes to fuzz/corpus-run/<target>
# (not committed) and crashes to fuzz/artifacts/<target>.
#
#   scripts/fuzz.sh                    # every target
#   RUNS=100000 scripts/fuzz.sh config # one target, shorter
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-1000000}"
MAX_SECS="${MAX_SECS:-900}"
TOOLS="$PWD/.amp-cache/cargo-fuzz"
if [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
    cargo install cargo-fuzz --locked --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"
# cargo-fuzz needs nightly-only compiler flags (sanitizers); the machine has stable only.
export RUSTC_BOOTSTRAP=1

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(sse_openai sse_anthropic request_bodies config pdf docx)
fi
cd fuzz
for target in "${targets[@]}"; do
    mkdir -p "corpus-run/$target"
    cp -n "corpus/$target"/* "corpus-run/$target/" 2>/dev/null || true
    echo "fuzz: $target, $RUNS runs (at most ${MAX_SECS}s)"
    cargo fuzz run -O "$target" "corpus-run/$target" -- \
        -runs="$RUNS" -max_total_time="$MAX_SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
done
