#!/usr/bin/env bash
# Builds amp-server and the load harness in release, then runs the harness on loopback:
#   scripts/load.sh                      # compare + max (the default: `all`)
#   scripts/load.sh compare --rates 1000,2000 --secs 20
#   scripts/load.sh max --start 3000 --step 1000 --secs 10 --until 12000
#   scripts/load.sh soak --rate 2000 --secs 600 --sample-secs 10
# The harness starts its own mock upstream and amp-server, and stops both when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

# One invocation, so both binaries share one feature resolution and one build.
cargo build --release -p amp-server -p amp-benches --bin amp-server --bin amp-load

if [ "$#" -eq 0 ]; then
    set -- all
fi
exec target/release/amp-load "$@"
