#!/usr/bin/env bash
# Starts amp-server on the embedded defaults (or the config named by --config / AMP_CONFIG).
# Extra arguments go to amp-server, e.g. `scripts/serve.sh --listen 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "serve.sh: cargo is required (https://rustup.rs)" >&2
    exit 1
fi

exec cargo run --release -p amp-server -- "$@"
