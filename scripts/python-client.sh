#!/usr/bin/env bash
# Installs OpenAI's official Python client into a virtual environment under .amp-cache, for
# the tests that drive AMP's /v1 endpoints with it, and prints the environment's python.
# Idempotent: an environment that already imports the pinned version is kept.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${AMP_PYTHON_VENV:-$root/.amp-cache/python}"
version="3.57.0"
python="$venv/bin/python"
if ! "$python" -c "import openai, sys; sys.exit(openai.__version__ != '$version')" >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$python" -m pip install --quiet --disable-pip-version-check "openai==$version" >&2
fi
echo "$python"
